/**
 * Hand-written prose for the man pages; everything else in them is generated from the
 * command tree (see man.ts). Plain roff (man macros).
 */

export const DESCRIPTION = `.B naq
keeps jobs in NATS JetStream.
You enqueue jobs from a shell, from cron, from CI, or from a TypeScript program.
Workers run them on one machine or on many.
A job names a
.I task
and carries a JSON
.IR payload .
A worker runs the handler function that it was given for that task, from a JavaScript
module.
Jobs are retried with backoff and can have a time limit per attempt.
Results and the status of each job are kept in NATS KV buckets.
.PP
Every stream, subject and bucket name starts with a
.I namespace
(default
.BR naq ).
This lets several applications share one NATS account.
.B naq stream init
creates them all; they are described in
.IR docs/wire-format.md .
.PP
The CLI is made for scripts:
.IP \\(bu 2
Data goes to standard output.
With
.BR \\-\\-json ,
that is one JSON document, or NDJSON for
.BR "worker start" .
.IP \\(bu
Messages, warnings and errors go to standard error.
Progress messages appear only when standard error is a terminal.
.IP \\(bu
An error is one line naming what was wrong.
.IP \\(bu
The exit codes are the same for every command (see
.BR "EXIT STATUS" ).
.IP \\(bu
Destructive commands ask for confirmation on a terminal.
Without a terminal they refuse unless given
.BR \\-\\-force .`;

export const FILES = `Unless
.B \\-\\-config
or
.B NAQ_CONFIG
names a file, naq uses the first of these it finds.
It searches the current directory, then each parent directory up to the home directory:
.PP
.RS
.nf
package.json          (its "naq" key)
\\&.naqrc               (YAML or JSON)
\\&.naqrc.json
\\&.naqrc.yaml
\\&.naqrc.yml
\\&.naqrc.js
\\&.naqrc.cjs
\\&.naqrc.mjs
naq.config.js
naq.config.cjs
naq.config.mjs
.fi
.RE
.PP
Then, in
.B $XDG_CONFIG_HOME/naq/
(usually
.BR ~/.config/naq/ ):
.BR config ,
.BR config.json ,
.BR config.yaml ,
.BR config.yml ,
.BR config.js ,
.B config.cjs
or
.BR config.mjs .
JavaScript config files are executed.
.PP
.B $XDG_CACHE_HOME/naq/
(usually
.BR ~/.cache/naq/ )
holds V8 code caches of the CLI, one per command, written by its first successful run:
later runs start faster. Caches of other naq builds are removed a day after they were
written. Deleting the directory is always safe.`;

/** A paragraph per command group, shown under DESCRIPTION of its page. */
export const GROUP_PROSE: Record<string, string> = {
  worker: `A worker takes jobs from one or more queues and runs the task handlers it was given,
at most
.B \\-\\-concurrency
at once.
Jobs are acknowledged only after their result is written, so a worker that dies mid-job
loses nothing: the job is delivered again after the queue's ack wait.
SIGTERM or SIGINT stops taking jobs and lets running ones finish within
.BR \\-\\-grace ;
a second signal releases them at once for another worker.`,
  job: `A job names a task, carries a JSON payload, and is retried with backoff until its
attempts are used up; then it is dead-lettered.
Enqueueing is idempotent by job id within the jobs stream's duplicate window.`,
  stream: `naq keeps its jobs, events and dead letters in JetStream streams, and its records in KV
buckets, all named after the namespace.
.B stream init
creates or updates them in place; naq never deletes a stream to change it.`,
  events: `Every step of a job's life is an event on the events stream
.RI ( ns _events,
subject
.IB ns .events. queue . job-id . type ;
worker lifecycle events use the queue
.BR _worker ).
Reading events never consumes or deletes them, and leaves nothing on the server: each
read uses an ephemeral ordered consumer that is deleted when the read ends.
.PP
The server filters on the queue, the job id and the type, which are in the subject;
.B \\-\\-task
and
.B \\-\\-worker
are checked by naq on the events the server sends.
nats\\-server 2.9 accepts one filter subject per consumer: there, several
.B \\-\\-type
values become one subject with a type wildcard, and naq checks the type.
.PP
.B \\-\\-since
takes a duration back from now (10m, 2h, 1d), an ISO 8601 time, or
.BR all .
.B tail
starts with new events,
.B history
reads all of a job's events, and
.B stats
reads the last hour.
A window is read from its start, not by scanning the whole stream.
.PP
.B tail
exits 0 on SIGINT or SIGTERM, when the reader of its output goes away, and after
.B \\-\\-count
matching events; with
.B \\-\\-max\\-wait
it exits 4 when fewer than
.B \\-\\-count
events came in time.
.B history
exits 3 when there are no events for the job.
.PP
.B stats
reports events per type, jobs completed and failed, the failure rate
(failed / (completed + failed)), throughput (jobs ended per second over the window), and
the run time of completed jobs (p50, p95, p99, nearest rank).
Workers that started in the window, never stopped, and no longer send heartbeats are
reported as lost (heartbeat missed).
.PP
Events are kept for
.B streams.events.maxAge
(default 7 days) and up to
.B streams.events.maxBytes
(default: no limit);
.B naq stream info
.IB ns _events
shows both.
.PP
A worker holds each attempt's
.B started
event for
.B streams.events.foldStarted
(default 100ms,
.BR NAQ_EVENTS_FOLD_STARTED ;
0 turns it off): an attempt that ends sooner stores no separate
.B started
message, its
.BR completed ,
.B failed
or
.B retrying
event carries
.B startedAt
instead, and
.BR tail ,
.B history
and
.B stats
show the
.B started
event as usual.
A longer attempt's
.B started
is stored when the hold is over.`,
  scheduler: `Delayed jobs
.RB ( "naq job enqueue \\-\\-delay" " or " \\-\\-at )
and recurring schedules
.RB ( "naq scheduler add" )
are fired by
.BR "naq scheduler start" .
Several schedulers may run: one holds a lease in the
.IB ns _leader
bucket and fires; another takes over within the lease TTL when it dies, at once when it
stops.
Each due run fires once: the run is claimed by compare\\-and\\-set on the schedule before
publishing, and the fired job's id is
.IR name \\- due-ms ,
so a second publish is absorbed by JetStream's duplicate window.
Missed runs follow the schedule's
.B \\-\\-misfire
policy:
.B skip
(default),
.B catch\\-up
or
.BR fire\\-once .`,
  config: `Configuration comes from defaults, then a config file, then NAQ_* environment
variables, then command-line flags; later wins.`,
};

/**
 * Ends this process at once, for the exits that must not wait (a second signal, a shutdown
 * past its timeout): SIGKILL to itself, so whatever waits on it sees it killed by signal 9
 * (exit status 137 in a shell and as a container's exit code, `status=9/KILL` in systemd), a
 * failure, for whatever runs it to start it again.
 *
 * Not `process.exit`, which waits for every thread inside chDB: it ends the worker threads and
 * libuv's thread pool and waits for each, a worker thread's exit and chDB's own `exit` handler
 * close chDB connections, and closing one waits on a lock that a running statement holds. chDB
 * cannot interrupt a statement (its C interface has no cancel), so the process hangs until the
 * statement ends, minutes under load (seen: the main thread in `exit` waiting on chDB's lock of
 * its connections, a libuv thread inside `chdb_query_n`). Nothing a process runs can delay a
 * SIGKILL. It is a crash Herald is built to take: what it acknowledged is stored before the
 * acknowledgement, and the next start resumes from the committed offsets. The log is written
 * synchronously, so a line logged before this call is out.
 *
 * @example
 * logger('error', 'herald.shutdown_timeout', { timeout_ms: config.shutdown_timeout_ms })
 * exitAtOnce()
 */
export const exitAtOnce = (): never => {
  process.kill(process.pid, 'SIGKILL')
  // Not reached: the kernel ends every thread of the process before kill returns.
  return process.exit(1)
}

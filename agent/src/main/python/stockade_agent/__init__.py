"""Stockade's programs inside a sandbox, standard library only. Three entry programs sit beside
this package in the agent's directory (/opt/stockade, read-only; the server installs it compiled
to bytecode) and import it: "agent" (main.main), "kernel" (kernel.main) and "relay" (relay.main).

The agent, the sandbox's init, serves the host over a unix socket (docs/agent-protocol.md):
    main          start-up, command line, socket, the table of operations, one thread per connection
    protocol      framing, JSON answers, error codes, request fields, the per-client output queue
    settings      what the command line set, the sandbox's accounts, the log
    children      the tables of children, the reaper, how a child's end is signalled and described
    credentials   acting as a sandbox user: spawning with its ids, file operations with its permissions
    processes     exec, attach, ps, input, close_stdin, resize, signal
    terminals     the pseudo-terminal of a process started with pty (opened, sized, made its ctty)
    files         stat, list, mkdir, move, remove, read, write
    file_metadata the user.e2b.* extended attributes that hold a file's metadata (for files)
    watch         watch, watcher_create, _events, _remove (directory watching with one inotify instance)
    contexts      context_create, _list, _delete, _restart, _warm, execute
    kernels       the agent's side of each kernel process: start, cells, pump, death
    egress        the proxy variables and the supervision of the relay
The kernel, one per code context, runs as the context's user: kernel, kernel_events, kernel_bash (bash contexts).
The relay carries loopback TCP to the host's egress proxy: relay, relay_identify.
All three use shared (helpers they would otherwise each copy).

The agent's threads: the main thread accepts; one thread per connection runs one request; one
pump thread per process or kernel reads its pipes and delivers the end; one reaper thread waits
for every child (as PID 1 it also reaps orphans); one deadline thread kills processes that time
out; with --egress, one supervisor thread keeps the relay running; once something is watched, one
inotify reader thread, and one thread per polled watcher.

The agent's start-up is on the create path: the modules it imports before its socket listens
(main, protocol, settings, shared, egress) import builtin modules only, and the rest on first use
(shared.Lazy); the operations' modules (processes, terminals, files, contexts, kernels, credentials,
children) are imported after it listens: processes (with terminals) by main's warm-up thread, the
others by the first request that needs them.
"""

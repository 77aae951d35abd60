namespace Btrfs.Core
{
    using System;
    using System.Collections.Generic;
    using System.Diagnostics;
    using System.Runtime.ExceptionServices;
    using System.Runtime.InteropServices;
    using System.Threading;
    using Btrfs.Kernel;

    /// <summary>
    /// A replacement whose names were exchanged (<see cref="TemporaryFile.BeginReplace"/>) and that is in its
    /// grace: the old file keeps a hidden name and its write lease for <see cref="Grace"/>, and is asked
    /// every millisecond whether anyone but us opened it (an open that found the name just before the
    /// exchange reaches the inode a moment later). If nobody did, the old file's name goes; if someone did,
    /// the exchange is undone before that lease is released (the opener gets the original, unchanged,
    /// under its name), and the new copy then gets the same grace before it goes.
    /// <para>
    /// <see cref="Finish"/> waits the grace out on the calling thread; a <see cref="GraceSettler"/> does
    /// it on a thread of its own, so that a run over many files copies the next file meanwhile, and the
    /// process's end settles whatever is left (<see cref="SettleAllBeforeTheProcessEnds"/>). <see cref="Step"/>
    /// lets one thread in at a time.
    /// </para>
    /// </summary>
    internal sealed class PendingReplacement : IDisposable
    {
        /// <summary>
        /// How long an open that looked the name up just before the exchange gets to reach the old inode (and the
        /// lease), counted only while the grace is attended (steps at most 5 ms apart): time this process or its
        /// thread was held up does not count, since on CPUs that busy an opener may have been held up as long.
        /// </summary>
        internal static readonly TimeSpan Grace = TimeSpan.FromMilliseconds(50);

        /// <summary>At most this much of the time between two steps counts as attended (a longer gap: this process, or its thread, was held up).</summary>
        private static readonly TimeSpan MostPerStep = TimeSpan.FromMilliseconds(5);

        private static readonly object Registry = new();
        private static readonly HashSet<PendingReplacement> Unsettled = new();
        private readonly object stepping = new();
        private readonly TemporaryFile temp;
        private readonly bool ownsTemporary;
        private readonly string path;
        private readonly string what;
        private readonly string name;
        private readonly ExchangeHooks? hooks;
        private readonly Stopwatch clock = Stopwatch.StartNew();
        private TimeSpan attended;
        private TimeSpan lastStep;
        private readonly ManualResetEventSlim settled = new(false);
        private WriteLease? oldLease;
        private WriteLease? newLease;
        private bool undone;
        private Exception? failure;
        private volatile bool queued;
        private readonly Func<Exception?>? stillRight;

        /// <summary>Names exchanged and both leases held: the old file's grace begins (made under <see cref="ExchangeGate"/>).</summary>
        internal PendingReplacement(TemporaryFile temp, bool ownsTemporary, WriteLease? oldLease, WriteLease? newLease, string name, string path, string what, ExchangeHooks? hooks, Func<Exception?>? stillRight = null)
        {
            this.stillRight = stillRight;
            Copy = FileStatus.Of(temp.Handle);
            this.temp = temp;
            this.ownsTemporary = ownsTemporary;
            this.oldLease = oldLease;
            this.newLease = newLease;
            this.name = name;
            this.path = path;
            this.what = what;
            this.hooks = hooks;
            lock (Registry)
            {
                Unsettled.Add(this);
            }
        }

        /// <summary>
        /// Held from the last check before an exchange of names until its <see cref="PendingReplacement"/>
        /// exists: the process's end takes it, so every exchanged replacement is known when it settles them.
        /// </summary>
        internal static object ExchangeGate { get; } = new();

        /// <summary>The process is ending (SIGTERM, SIGHUP, exit): no exchange begins any more (read under <see cref="ExchangeGate"/>).</summary>
        internal static bool Ending { get; private set; }

        /// <summary>The new file's inode (null if it could not be read): opening it during the grace would count as someone opening it.</summary>
        internal FileStatus? Copy { get; }

        /// <summary>The grace is over: the replacement is done, or undone with <see cref="Failure"/>.</summary>
        internal bool IsSettled => settled.IsSet;

        /// <summary>Why the replacement was undone (null while it is pending or when it went through).</summary>
        internal Exception? Failure => IsSettled ? failure : null;

        /// <summary>
        /// An exchange that was undone at once (the hidden name did not hold the original): the new copy's
        /// grace, then <paramref name="why"/>.
        /// </summary>
        internal static PendingReplacement Undone(TemporaryFile temp, bool ownsTemporary, WriteLease? newLease, string name, string path, string what, Exception why) =>
            new(temp, ownsTemporary, null, newLease, name, path, what, null) { undone = true, failure = why };

        /// <summary>A replacement with no grace to wait (no lease was held, or a plain rename was used): done.</summary>
        internal static PendingReplacement Done(TemporaryFile temp, bool ownsTemporary, string path, string what)
        {
            var done = new PendingReplacement(temp, ownsTemporary, null, null, string.Empty, path, what, null);
            done.Settle(null);
            return done;
        }

        /// <summary>Handed to a <see cref="GraceSettler"/>: from now on only its thread calls <see cref="Step"/>.</summary>
        internal void MarkQueued() => queued = true;

        /// <summary>
        /// Hooks the process's end (<see cref="ProcessEnd"/>: SIGTERM from systemd or timeout, SIGHUP when the terminal
        /// closes, an exit): before it, <see cref="SettleAllBeforeTheProcessEnds"/>. A thread that waits graces out would
        /// otherwise just stop with the process, and each file in its grace would stay under its hidden name. Should
        /// something cancel a signal's default action, exchanges begin again.
        /// </summary>
        internal static void HookTheProcessEnd() => ProcessEnd.Hook(SettleAllBeforeTheProcessEnds, ExchangesMayBeginAgain);

        private static void ExchangesMayBeginAgain()
        {
            lock (ExchangeGate)
            {
                Ending = false;
                Monitor.PulseAll(ExchangeGate);
            }
        }

        /// <summary>
        /// The process is ending: no exchange begins any more, and every replacement in its grace is settled
        /// here (undone if someone opened the old file), whoever was waiting it out.
        /// </summary>
        internal static void SettleAllBeforeTheProcessEnds()
        {
            PendingReplacement[] all;
            lock (ExchangeGate)
            {
                Ending = true;
                lock (Registry)
                {
                    all = new PendingReplacement[Unsettled.Count];
                    Unsettled.CopyTo(all);
                }
            }

            foreach (PendingReplacement p in all)
            {
                while (!p.Step())
                {
                    Thread.Sleep(1);
                }
            }
        }

        /// <summary>
        /// One look at the leases; true when settled. The old file's lease broken or no longer grantable
        /// (someone else has it open or is waiting for it): undo. Both still alone after the grace: done.
        /// Any thread may call it (one at a time is let in).
        /// </summary>
        internal bool Step()
        {
            lock (stepping)
            {
                return StepAlone();
            }
        }

        private bool StepAlone()
        {
            if (settled.IsSet)
            {
                return true;
            }

            TimeSpan now = clock.Elapsed;
            attended += now - lastStep < MostPerStep ? now - lastStep : MostPerStep;
            lastStep = now;

            try
            {
                if (!undone)
                {
                    if (oldLease is null)
                    {
                        temp.Commit();
                        return Settle(null);
                    }

                    if (!oldLease.IsIntact || !oldLease.Reaffirm())
                    {
                        // Someone opened the original before the exchange and waits for the lease: give the
                        // name back to the original before that lease is released, then release it (the opener
                        // goes on with the original, under its name).
                        temp.UndoExchange(name, path);
                        oldLease.Dispose();
                        oldLease = null;
                        hooks?.AfterUndo?.Invoke(temp.CurrentName!);
                        failure = TemporaryFile.OpenedMeanwhile(path, what, temp.Fate);
                        undone = true;
                        attended = TimeSpan.Zero;
                        return false;
                    }

                    if (attended >= Grace)
                    {
                        // What the exchange was proven on still holds (the name leads to the new copy, the old file was not
                        // changed in the grace): else undone (or, the name given to another file, left as it is).
                        if (stillRight?.Invoke() is Exception changed)
                        {
                            if (changed is FileOperationException { Operation: "statx" } && temp.CurrentName is null)
                            {
                                return Settle(changed);
                            }

                            temp.UndoExchange(name, path);
                            oldLease.Dispose();
                            oldLease = null;
                            failure = changed;
                            undone = true;
                            attended = TimeSpan.Zero;
                            return false;
                        }

                        // Done: the old inode leaves under the hidden name.
                        temp.Commit();
                        return Settle(null);
                    }

                    return false;
                }

                // After an undo, whoever found the name while it held the new copy is in the same position as
                // an opener of the original: the copy keeps its hidden name and its lease through the same
                // grace, and goes (when the temporary file is disposed) only if nobody opened it meanwhile.
                if (newLease is null)
                {
                    return Settle(failure);
                }

                if (!newLease.IsIntact || !newLease.Reaffirm())
                {
                    return Settle(temp.KeepOpenedCopy(path, what));
                }

                return attended >= Grace ? Settle(failure) : false;
            }
            catch (Exception ex)
            {
                return Settle(ex);
            }
        }

        /// <summary>
        /// Waits until the grace is over (on this thread, or for the settler it was handed to), then throws
        /// the failure if the replacement was undone.
        /// </summary>
        internal void Finish()
        {
            Wait();
            if (failure is not null)
            {
                ExceptionDispatchInfo.Capture(failure).Throw();
            }
        }

        /// <summary>Waits until settled (the grace is never cut short: an undo may still be needed); never throws the failure.</summary>
        public void Dispose() => Wait();

        private void Wait()
        {
            if (queued)
            {
                settled.Wait();
                return;
            }

            while (!Step())
            {
                Thread.Sleep(1);
            }
        }

        private bool Settle(Exception? why)
        {
            failure = why;
            try
            {
                newLease?.Dispose();
                newLease = null;
                oldLease?.Dispose();
                oldLease = null;
                if (ownsTemporary)
                {
                    temp.Dispose(); // the hidden name goes unless the file was committed or kept
                }
            }
            catch (Exception ex)
            {
                failure ??= ex;
            }
            finally
            {
                lock (Registry)
                {
                    Unsettled.Remove(this);
                }

                settled.Set();
            }

            return true;
        }
    }

    /// <summary>
    /// Waits out the graces of replacements on one thread of its own, so that the caller goes on with the
    /// next file: each <see cref="PendingReplacement"/> added is looked at every millisecond until it
    /// settles. <see cref="Dispose"/> returns once every one has settled. (The process's end settles every
    /// replacement first: see <see cref="PendingReplacement.SettleAllBeforeTheProcessEnds"/>.)
    /// </summary>
    internal sealed class GraceSettler : IDisposable
    {
        private readonly object gate = new();
        private readonly List<PendingReplacement> waiting = new();
        private Thread? thread;
        private bool closing;

        /// <summary>
        /// Hands <paramref name="pending"/> (not settled yet) to the settler's thread; once the settler is
        /// closing (the process is ending), waits its grace out on the calling thread instead.
        /// </summary>
        internal void Add(PendingReplacement pending)
        {
            lock (gate)
            {
                if (!closing)
                {
                    if (thread is null)
                    {
                        var starting = new Thread(Run) { IsBackground = true, Name = "btrfs grace" };
                        starting.Start();
                        thread = starting;
                    }

                    pending.MarkQueued(); // only now: from here on only the settler's thread steps it
                    waiting.Add(pending);
                    Monitor.Pulse(gate);
                    return;
                }
            }

            while (!pending.Step())
            {
                Thread.Sleep(1);
            }
        }

        /// <summary>Returns when every replacement handed over has settled.</summary>
        public void Dispose()
        {
            Thread? running;
            lock (gate)
            {
                closing = true;
                Monitor.Pulse(gate);
                running = thread;
            }

            if (running is not null && running != Thread.CurrentThread)
            {
                running.Join();
            }
        }

        private void Run()
        {
            var now = new List<PendingReplacement>();
            while (true)
            {
                lock (gate)
                {
                    while (waiting.Count == 0)
                    {
                        if (closing)
                        {
                            return;
                        }

                        Monitor.Wait(gate);
                    }

                    now.Clear();
                    now.AddRange(waiting);
                }

                foreach (PendingReplacement p in now)
                {
                    if (p.Step()) // never throws: a failure settles it
                    {
                        lock (gate)
                        {
                            waiting.Remove(p);
                        }
                    }
                }

                Thread.Sleep(1);
            }
        }
    }
}

namespace Btrfs.Core
{
    using System;
    using System.Collections.Generic;
    using System.Runtime.InteropServices;
    using System.Threading;
    using System.Threading.Tasks;

    /// <summary>
    /// The end of this process by SIGTERM (systemd stopping a runbook, timeout), by SIGHUP (the terminal closed) or by
    /// an exit: what is half done is settled before it (files in their grace, a tree being built hidden). pwsh ends on
    /// those two signals without ProcessExit, and a signal's default action follows the handlers, so the handler is
    /// where the settling happens. Hooked once, by the first piece of work that needs it.
    /// </summary>
    internal static class ProcessEnd
    {
        /// <summary>After a signal, the process is taken to go on (another handler cancelled the signal's default action) once this much time has passed.</summary>
        private static readonly TimeSpan StillRunningAfter = TimeSpan.FromSeconds(2);

        private static readonly object Gate = new();
        private static readonly List<(Action Settle, Action? Resume, bool Waits)> Parties = new();
        private static PosixSignalRegistration? terminate;
        private static PosixSignalRegistration? hangup;
        private static bool hooked;
        private static volatile bool signalled;
        private static long signalledAt; // Stopwatch timestamp of the last SIGTERM or SIGHUP (0: none)
        private static int settling; // handlers still settling: the process is ending, unless something cancels the signal

        /// <summary>
        /// True from a SIGTERM or SIGHUP on, until the process is found still running <see cref="StillRunningAfter"/> later:
        /// work that checks it between steps stops as on Ctrl+C.
        /// </summary>
        internal static bool Signalled => signalled;

        /// <summary>
        /// Work begun at <paramref name="begunAt"/> (a Stopwatch timestamp) stops between steps: a SIGTERM or SIGHUP came
        /// after it began, or is being settled now (work begun while the process is ending would be cut off by its end).
        /// Work begun once the handler was done (the signal cancelled by something else, the process going on) is left
        /// alone (a hostile review: a copy started after a cancelled SIGHUP was stopped too, the flag still set).
        /// </summary>
        internal static bool Stops(long begunAt) => signalled && (Volatile.Read(ref settling) > 0 || begunAt <= Interlocked.Read(ref signalledAt));

        /// <summary>
        /// Hooks the process's end (once), with <paramref name="settle"/> run before it (once per distinct action, in the
        /// order hooked; one that may wait, <paramref name="waits"/>, after those that do not, so that a wait of seconds
        /// never holds up a settling of milliseconds); <paramref name="resume"/> runs when a signal turned out not to end
        /// the process.
        /// </summary>
        internal static void Hook(Action settle, Action? resume = null, bool waits = false)
        {
            ArgumentNullException.ThrowIfNull(settle);
            lock (Gate)
            {
                if (!Parties.Exists(p => p.Settle == settle))
                {
                    if (waits)
                    {
                        Parties.Add((settle, resume, true));
                    }
                    else
                    {
                        Parties.Insert(Parties.FindIndex(p => p.Waits) is int first and >= 0 ? first : Parties.Count, (settle, resume, false));
                    }
                }

                if (hooked)
                {
                    return;
                }

                hooked = true;
                AppDomain.CurrentDomain.ProcessExit += (_, _) => SettleAll();
                try
                {
                    terminate = PosixSignalRegistration.Create(PosixSignal.SIGTERM, _ => OnSignal());
                    hangup = PosixSignalRegistration.Create(PosixSignal.SIGHUP, _ => OnSignal());
                }
                catch (Exception ex) when (ex is PlatformNotSupportedException or System.IO.IOException)
                {
                }
            }
        }

        private static void SettleAll()
        {
            (Action Settle, Action? Resume, bool Waits)[] all;
            lock (Gate)
            {
                all = Parties.ToArray();
            }

            foreach ((Action settle, Action? _, bool _) in all)
            {
                try
                {
                    settle();
                }
                catch (Exception)
                {
                    // One party's failure must not keep the others from settling before the process ends (a review):
                    // there is no one to tell on a signal's thread.
                }
            }
        }

        /// <summary>A signal whose default action ends the process after the handlers: everything settled first; should something cancel that action, work resumes after <see cref="StillRunningAfter"/>.</summary>
        private static void OnSignal()
        {
            long stamp = System.Diagnostics.Stopwatch.GetTimestamp();
            Interlocked.Increment(ref settling);
            Interlocked.Exchange(ref signalledAt, stamp);
            signalled = true;
            try
            {
                SettleAll();
            }
            finally
            {
                Interlocked.Decrement(ref settling);
            }

            _ = Task.Delay(StillRunningAfter).ContinueWith(
                _ =>
                {
                    // Only the last signal's timer says the process goes on: an earlier one's (a SIGHUP something cancelled,
                    // then a SIGTERM) must not undo the settling of the later (a review).
                    if (Interlocked.Read(ref signalledAt) != stamp || Volatile.Read(ref settling) > 0)
                    {
                        return;
                    }

                    signalled = false;
                    (Action Settle, Action? Resume, bool Waits)[] all;
                    lock (Gate)
                    {
                        all = Parties.ToArray();
                    }

                    foreach ((Action _, Action? resume, bool _) in all)
                    {
                        resume?.Invoke();
                    }
                },
                TaskScheduler.Default);
        }
    }
}

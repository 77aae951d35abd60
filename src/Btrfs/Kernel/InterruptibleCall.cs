namespace Btrfs.Kernel
{
    using System;
    using System.Diagnostics;
    using System.Globalization;
    using System.IO;
    using System.Threading;
    using Btrfs.Interop;

    /// <summary>
    /// A call that may sleep in the kernel for as long as something else takes (SUBVOL_SYNC_WAIT waits for the
    /// cleaner, which a file kept open in the deleted subvolume puts off indefinitely), run on a thread of its own
    /// so that the caller can stop waiting for it, and <see cref="Interrupt"/>ed when it does: the thread is sent a
    /// signal, and a sleep the kernel allows to be interrupted ends with EINTR. Without that the thread would
    /// stay in the kernel, holding its descriptor (and so the filesystem busy), until the sleep ended by itself.
    /// </summary>
    internal sealed class InterruptibleCall
    {
        /// <summary>
        /// The signal sent: the first real-time signal, which the .NET runtime itself handles in every thread (it
        /// interrupts threads with it to suspend them for the garbage collector, and its handler does nothing to a
        /// thread outside managed code), so nothing new is installed and no handler of anyone else's runs. Zero
        /// when this process does not handle it: then nothing is sent.
        /// </summary>
        private static readonly Lazy<int> Signal = new(FindSignal);

        private readonly Thread thread;
        private long tid;
        private int result = -1;

        private InterruptibleCall(Func<int> call, string name)
        {
            thread = new Thread(
                () =>
                {
                    Volatile.Write(ref tid, Libc.Syscall(Libc.SYS_gettid, 0, 0, 0, 0, 0));
                    result = call();
                },
                maxStackSize: 256 * 1024)
            {
                IsBackground = true,
                Name = name,
            };
        }

        /// <summary>The call's result (an errno, or 0), once <see cref="Wait"/> returned true.</summary>
        internal int Result => result;

        /// <summary>Starts <paramref name="call"/> (which returns 0 or an errno) on a thread named <paramref name="name"/>.</summary>
        internal static InterruptibleCall Start(Func<int> call, string name)
        {
            var c = new InterruptibleCall(call, name);
            c.thread.Start();
            return c;
        }

        /// <summary>True when the call has returned within <paramref name="timeout"/>.</summary>
        internal bool Wait(TimeSpan timeout) => thread.Join(timeout);

        /// <summary>
        /// Ends the call: sends its thread the signal every 20 ms (one that arrives just before the call enters
        /// the kernel is spent in vain) until the call has returned, for at most <paramref name="patience"/>.
        /// True when it has returned.
        /// </summary>
        internal bool Interrupt(TimeSpan patience)
        {
            int signal = Signal.Value;
            var clock = Stopwatch.StartNew();
            while (!thread.Join(TimeSpan.FromMilliseconds(20)))
            {
                if (signal == 0 || clock.Elapsed > patience)
                {
                    return false;
                }

                long id = Volatile.Read(ref tid);
                if (id > 0)
                {
                    _ = Libc.Syscall(Libc.SYS_tgkill, Environment.ProcessId, id, signal, 0, 0);
                }
            }

            return true;
        }

        private static int FindSignal()
        {
            try
            {
                int rtmin = Libc.CurrentSigRtMin();
                foreach (string[] fields in Processes.StatusLines("/proc/self/status"))
                {
                    if (fields.Length == 2 && fields[0] == "SigCgt:")
                    {
                        ulong caught = ulong.Parse(fields[1], NumberStyles.HexNumber, CultureInfo.InvariantCulture);
                        return rtmin is > 0 and <= 64 && (caught & (1UL << (rtmin - 1))) != 0 ? rtmin : 0;
                    }
                }
            }
            catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or FormatException or OverflowException or EntryPointNotFoundException or DllNotFoundException)
            {
                // Nothing is sent: the call is left to end by itself.
            }

            return 0;
        }
    }
}

namespace Btrfs.Tests.Infrastructure
{
    using System;
    using System.Threading;
    using Btrfs.Kernel;

    /// <summary>
    /// A hostile renamer: a thread exchanging two names (renameat2 RENAME_EXCHANGE, across directories too) as fast as
    /// it can until disposed, so a test can run a command against names that turn under it.
    /// </summary>
    internal sealed class NameExchanger : IDisposable
    {
        private readonly OpenFile dirA, dirB;
        private readonly Thread thread;
        private bool stop;
        private long exchanges;

        private NameExchanger(string dirA, string a, string dirB, string b)
        {
            this.dirA = OpenFile.Open(dirA, OpenOptions.AllowDirectory);
            this.dirB = OpenFile.Open(dirB, OpenOptions.AllowDirectory);
            thread = new Thread(() =>
            {
                while (!Volatile.Read(ref stop))
                {
                    if (Btrfs.Interop.Libc.RenameAt2(this.dirA.Handle, a, this.dirB.Handle, b, Btrfs.Interop.Libc.RENAME_EXCHANGE) == 0)
                    {
                        Interlocked.Increment(ref exchanges);
                    }
                }
            });
        }

        /// <summary>How many exchanges succeeded so far.</summary>
        internal long Exchanges => Interlocked.Read(ref exchanges);

        /// <summary>Starts exchanging <paramref name="a"/> in <paramref name="dirA"/> with <paramref name="b"/> in <paramref name="dirB"/>.</summary>
        internal static NameExchanger Start(string dirA, string a, string dirB, string b)
        {
            var x = new NameExchanger(dirA, a, dirB, b);
            x.thread.Start();
            return x;
        }

        /// <summary>Stops the thread (and waits for it), then closes the directories.</summary>
        public void Dispose()
        {
            Volatile.Write(ref stop, true);
            thread.Join();
            dirA.Dispose();
            dirB.Dispose();
        }
    }
}

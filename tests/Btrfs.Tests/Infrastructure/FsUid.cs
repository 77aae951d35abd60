namespace Btrfs.Tests.Infrastructure
{
    using System;
    using System.Runtime.InteropServices;
    using Btrfs.Kernel;

    /// <summary>
    /// Drops the calling thread's filesystem credentials to another user: setfsuid(2)/setfsgid(2) are
    /// per thread, and leaving uid 0 clears the thread's file capabilities (CAP_DAC_OVERRIDE ...), so
    /// permission checks are those of that user. Hosted runspaces run on the calling thread (see
    /// <see cref="Pwsh"/>), so the cmdlet really runs as the user. Restored on Dispose.
    /// </summary>
    internal sealed class FsUid : IDisposable
    {
        internal const uint Nobody = 65534;

        private FsUid()
        {
        }

        internal static FsUid Become(uint uid)
        {
            setfsgid(uid);
            setfsuid(uid);
            if (setfsuid(uint.MaxValue) != uid)
            {
                setfsuid(0);
                setfsgid(0);
                throw new InvalidOperationException("setfsuid did not take effect");
            }

            return new FsUid();
        }

        public void Dispose()
        {
            setfsuid(0);
            setfsgid(0);
        }

        [DllImport("libc")]
        private static extern int setfsuid(uint fsuid);

        [DllImport("libc")]
        private static extern int setfsgid(uint fsgid);
    }
}

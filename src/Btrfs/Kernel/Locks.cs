namespace Btrfs.Kernel
{
    using Btrfs.Interop;

    /// <summary>
    /// Advisory locks (flock) that say "a live process is using this", whatever PID namespace it runs in:
    /// the kernel drops the lock when the holder's descriptor is closed or the holder dies (kill -9 too).
    /// </summary>
    internal static class Locks
    {
        /// <summary>Takes an exclusive lock without waiting: false when another open file description holds one.</summary>
        internal static bool TryLockExclusive(SafeFileDescriptor fd) => Libc.Flock(fd, Libc.LOCK_EX | Libc.LOCK_NB) == 0;
    }
}

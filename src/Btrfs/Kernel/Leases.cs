namespace Btrfs.Kernel
{
    using System;
    using System.Runtime.InteropServices;
    using Btrfs.Interop;

    /// <summary>What asking the kernel for a write lease found.</summary>
    internal enum LeaseOutcome
    {
        /// <summary>Granted: no other open file description or mapping of the file exists anywhere.</summary>
        Held,

        /// <summary>EAGAIN: another open file description or a mapping exists (any user's, this process's own included).</summary>
        InUse,

        /// <summary>EACCES: only the file's owner (or a caller with CAP_LEASE) may take a lease.</summary>
        NotOwner,

        /// <summary>EINVAL and others: leases are disabled (fs.leases-enable = 0) or the filesystem has none.</summary>
        Unavailable,
    }

    /// <summary>
    /// A write lease (fcntl F_SETLEASE F_WRLCK): the kernel grants it only while no other open file
    /// description or mapping of the file exists, for every user's processes, and while it is held
    /// anyone who opens the file blocks until it is released (or fs.lease-break-time passes; an O_NONBLOCK
    /// open, as this module's own, fails with EWOULDBLOCK instead, the holder being asked all the same). So it
    /// proves "nobody else has it open" where a /proc scan cannot (other users' /proc/*/fd are
    /// unreadable to a non-root caller) and keeps it true for as long as it is held.
    /// </summary>
    /// <remarks>
    /// A lease break is signalled with SIGIO by default, whose default action ends the process: the
    /// signal is set to SIGURG first (default action: ignore), and the holder polls
    /// <see cref="IsIntact"/> between steps instead of waiting for the signal.
    /// </remarks>
    internal sealed class WriteLease : IDisposable
    {
        private readonly SafeFileDescriptor fd;
        private bool held;

        private WriteLease(SafeFileDescriptor fd)
        {
            this.fd = fd;
            held = true;
        }

        /// <summary>Asks for the lease on <paramref name="fd"/>; null unless <paramref name="outcome"/> is Held.</summary>
        internal static WriteLease? TryTake(SafeFileDescriptor fd, out LeaseOutcome outcome, out int errno)
        {
            errno = 0;
            if (Libc.Fcntl(fd, Libc.F_SETSIG, Libc.SIGURG) != 0)
            {
                errno = Marshal.GetLastPInvokeError();
                outcome = LeaseOutcome.Unavailable;
                return null;
            }

            if (Libc.Fcntl(fd, Libc.F_SETLEASE, Libc.F_WRLCK) == 0)
            {
                outcome = LeaseOutcome.Held;
                return new WriteLease(fd);
            }

            errno = Marshal.GetLastPInvokeError();
            outcome = errno switch
            {
                Libc.EAGAIN or Libc.EBUSY => LeaseOutcome.InUse,
                Libc.EACCES or Libc.EPERM => LeaseOutcome.NotOwner,
                _ => LeaseOutcome.Unavailable,
            };
            return null;
        }

        /// <summary>
        /// True while the lease is held and unbroken: nobody has tried to open the file since it was
        /// taken (a pending break turns F_GETLEASE from F_WRLCK to the type it is being broken to).
        /// </summary>
        internal bool IsIntact => held && Libc.Fcntl(fd, Libc.F_GETLEASE, 0) == Libc.F_WRLCK;

        /// <summary>
        /// Asks for the lease again on the same descriptor: the kernel checks once more that no other
        /// open file description exists. An opener is counted as soon as its open has the inode (before
        /// its security and fanotify permission hooks run, and before it reaches the lease), so this
        /// catches an open that <see cref="IsIntact"/> cannot see yet. False when someone else has it open.
        /// </summary>
        internal bool Reaffirm() => held && Libc.Fcntl(fd, Libc.F_SETLEASE, Libc.F_WRLCK) == 0;

        /// <summary>Releases the lease: an opener that was blocked by it proceeds.</summary>
        public void Dispose()
        {
            if (held && !fd.IsClosed)
            {
                _ = Libc.Fcntl(fd, Libc.F_SETLEASE, Libc.F_UNLCK);
            }

            held = false;
        }
    }
}

namespace Btrfs.Interop
{
    using System.Runtime.InteropServices;

    /// <summary>poll(2): here only to learn, without waiting, whether /proc/self/mountinfo changed (POLLPRI | POLLERR).</summary>
    internal static partial class Libc
    {
        internal const short POLLPRI = 0x2;
        internal const short POLLERR = 0x8;

        /// <summary>struct pollfd (poll.h).</summary>
        [StructLayout(LayoutKind.Sequential)]
        internal struct PollFd
        {
            internal int Fd;
            internal short Events;
            internal short REvents;
        }

        [LibraryImport(Name, EntryPoint = "poll", SetLastError = true)]
        internal static unsafe partial int Poll(PollFd* fds, nuint count, int timeout);
    }
}

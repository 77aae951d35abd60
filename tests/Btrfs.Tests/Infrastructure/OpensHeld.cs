namespace Btrfs.Tests.Infrastructure
{
    using System;
    using System.ComponentModel;
    using System.Runtime.InteropServices;

    /// <summary>
    /// Holds every open(2) of one file until disposed: a fanotify permission mark (FAN_OPEN_PERM) whose
    /// events are never answered, so the opener waits in the kernel whatever its flags (O_NONBLOCK too:
    /// unlike a lease, which an O_NONBLOCK open answers with EWOULDBLOCK) and can still be killed. Closing
    /// the fanotify descriptor lets the waiting opens through. Needs CAP_SYS_ADMIN; the test process must
    /// not open the file itself while it is held.
    /// </summary>
    internal sealed class OpensHeld : IDisposable
    {
        private const uint FAN_CLOEXEC = 0x1, FAN_CLASS_CONTENT = 0x4, FAN_MARK_ADD = 0x1;
        private const ulong FAN_OPEN_PERM = 0x10000;
        private const int AT_FDCWD = -100, O_RDONLY = 0;

        private int fd;

        private OpensHeld(int fd) => this.fd = fd;

        internal static OpensHeld Of(string path)
        {
            int fd = fanotify_init(FAN_CLASS_CONTENT | FAN_CLOEXEC, O_RDONLY);
            if (fd < 0)
            {
                throw new Win32Exception(Marshal.GetLastPInvokeError(), "fanotify_init");
            }

            if (fanotify_mark(fd, FAN_MARK_ADD, FAN_OPEN_PERM, AT_FDCWD, path) != 0)
            {
                int errno = Marshal.GetLastPInvokeError();
                close(fd);
                throw new Win32Exception(errno, $"fanotify_mark {path}");
            }

            return new OpensHeld(fd);
        }

        /// <summary>Waits until an open of the file is being held (an event waits to be answered); false when none came in time.</summary>
        internal bool WaitForOpen(TimeSpan timeout)
        {
            var p = new PollFd { Fd = fd, Events = POLLIN };
            return poll(ref p, 1, (int)timeout.TotalMilliseconds) == 1 && (p.Revents & POLLIN) != 0;
        }

        public void Dispose()
        {
            if (fd >= 0)
            {
                close(fd);
                fd = -1;
            }
        }

        [DllImport("libc", SetLastError = true)]
        private static extern int fanotify_init(uint flags, uint eventFileFlags);

        [DllImport("libc", SetLastError = true)]
        private static extern int fanotify_mark(int fanotifyFd, uint flags, ulong mask, int dirFd, string path);

        [DllImport("libc")]
        private static extern int close(int fd);

        private const short POLLIN = 0x1;

        [DllImport("libc", SetLastError = true)]
        private static extern int poll(ref PollFd fds, ulong nfds, int timeout);

        [StructLayout(LayoutKind.Sequential)]
        private struct PollFd
        {
            public int Fd;
            public short Events;
            public short Revents;
        }
    }
}

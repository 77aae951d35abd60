namespace Btrfs.Kernel
{
    using System;
    using System.IO;
    using System.Text;
    using Btrfs.Core;
    using Btrfs.Interop;

    /// <summary>
    /// The text of /proc/self/mountinfo, read again only when the kernel says the mount table changed: a
    /// descriptor of it is kept open, and poll(2) on it reports POLLPRI | POLLERR once any mount or unmount in
    /// this mount namespace happened after it was opened (proc(5)). For checks made once per file (is it an
    /// active swapfile?) on a host with many mounts. A filesystem's own options changed without a mount event
    /// (fsconfig's reconfigure, which newer util-linux uses for `mount -o remount`; a remount in another
    /// namespace; btrfs turning itself read-only) are not reported so: the text is also read again once it is
    /// <see cref="MaxAge"/> old.
    /// </summary>
    internal static class MountInfo
    {
        /// <summary>How old the text may get while the kernel reports no change.</summary>
        internal static readonly TimeSpan MaxAge = TimeSpan.FromSeconds(1);

        private static readonly object Gate = new();
        private static readonly System.Diagnostics.Stopwatch Age = new();
        private static SafeFileDescriptor? watch;
        private static string? text;

        /// <summary>The mount table's text; <paramref name="fresh"/> when it was read now (first call, or it changed since).</summary>
        internal static string Text(out bool fresh)
        {
            lock (Gate)
            {
                if (text is not null && watch is not null && Age.Elapsed < MaxAge && !Changed(watch))
                {
                    fresh = false;
                    return text;
                }

                watch?.Dispose();
                watch = null;
                text = null;
                SafeFileDescriptor fd = Libc.Open("/proc/self/mountinfo", Libc.O_RDONLY | Libc.O_CLOEXEC, 0);
                if (fd.IsInvalid)
                {
                    int errno = Errno.Last;
                    fd.Dispose();
                    throw FileOperationException.FromErrno(errno, "open", "/proc/self/mountinfo", "Cannot read the mount table from");
                }

                try
                {
                    string read = ReadAll(fd);
                    watch = fd;
                    text = read;
                    Age.Restart();
                    fresh = true;
                    return read;
                }
                catch
                {
                    fd.Dispose();
                    throw;
                }
            }
        }

        private static unsafe bool Changed(SafeFileDescriptor fd)
        {
            bool added = false;
            try
            {
                fd.DangerousAddRef(ref added);
                var p = new Libc.PollFd { Fd = (int)fd.DangerousGetHandle(), Events = Libc.POLLPRI };
                int n = Libc.Poll(&p, 1, 0);
                return n != 0 && (n < 0 || (p.REvents & (Libc.POLLPRI | Libc.POLLERR)) != 0); // an error: read it again
            }
            finally
            {
                if (added)
                {
                    fd.DangerousRelease();
                }
            }
        }

        private static string ReadAll(SafeFileDescriptor fd)
        {
            // All the bytes first, decoded once (a character split between two reads would not survive).
            using var bytes = new MemoryStream();
            byte[] buffer = new byte[1 << 16];
            while (true)
            {
                int n = Files.ReadFullyAt(fd, buffer, bytes.Length, "/proc/self/mountinfo");
                bytes.Write(buffer, 0, n);
                if (n < buffer.Length)
                {
                    break;
                }
            }

            return Encoding.UTF8.GetString(bytes.GetBuffer(), 0, (int)bytes.Length);
        }
    }
}

namespace Btrfs.Kernel
{
    using System.Runtime.InteropServices;
    using Btrfs.Core;
    using Btrfs.Interop;

    /// <summary>An open directory (O_RDONLY | O_DIRECTORY): what O_TMPFILE, linkat, renameat and syncfs work through.</summary>
    internal static class DirectoryHandle
    {
        /// <summary>Opens <paramref name="path"/> as a directory; a <see cref="FileOperationException"/> naming it when that fails.</summary>
        internal static SafeFileDescriptor Open(string path, string? advice = null)
        {
            SafeFileDescriptor dir = Libc.Open(path, Libc.O_RDONLY | Libc.O_DIRECTORY | Libc.O_CLOEXEC, 0);
            if (dir.IsInvalid)
            {
                int errno = Marshal.GetLastPInvokeError();
                dir.Dispose();
                throw FileOperationException.FromErrno(errno, "open", path, "Cannot open the directory", advice);
            }

            return dir;
        }

        /// <summary>As <see cref="Open"/>, with the error handed back instead of thrown.</summary>
        internal static SafeFileDescriptor? TryOpen(string path, string? advice, out FileOperationException? error)
        {
            error = null;
            SafeFileDescriptor dir = Libc.Open(path, Libc.O_RDONLY | Libc.O_DIRECTORY | Libc.O_CLOEXEC, 0);
            if (dir.IsInvalid)
            {
                error = Errno.Failure("open", path, "Cannot open the directory", advice);
                dir.Dispose();
                return null;
            }

            return dir;
        }

        /// <summary>A descriptor of its own for the same open directory (fcntl F_DUPFD_CLOEXEC).</summary>
        internal static SafeFileDescriptor Duplicate(SafeFileDescriptor dir, string path)
        {
            var dup = new SafeFileDescriptor();
            dup.SetDescriptor(Libc.Fcntl(dir, Libc.F_DUPFD_CLOEXEC, 0));
            if (dup.IsInvalid)
            {
                int errno = Marshal.GetLastPInvokeError();
                dup.Dispose();
                throw FileOperationException.FromErrno(errno, "fcntl(F_DUPFD_CLOEXEC)", path, "Cannot open the directory of");
            }

            return dup;
        }
    }
}

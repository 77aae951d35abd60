namespace Btrfs.Kernel
{
    using System.Runtime.InteropServices;
    using Btrfs.Core;
    using Btrfs.Interop;

    /// <summary>
    /// The one place a failed system call becomes an error: errno is captured right after the call
    /// (<see cref="Last"/>) and turned into a <see cref="FileOperationException"/> naming the call, the
    /// errno and the path (<see cref="Failure"/>, <see cref="Check(int, string, string, string, string?)"/>).
    /// The errno values Core decides on are named here, as the kernel names them.
    /// </summary>
    internal static class Errno
    {
        internal const int EPERM = Libc.EPERM;
        internal const int ENOENT = Libc.ENOENT;
        internal const int ENODEV = Libc.ENODEV;
        internal const int EINTR = Libc.EINTR;
        internal const int ENXIO = Libc.ENXIO;
        internal const int EAGAIN = Libc.EAGAIN;
        internal const int EACCES = Libc.EACCES;
        internal const int EFAULT = Libc.EFAULT;
        internal const int EBUSY = Libc.EBUSY;
        internal const int EEXIST = Libc.EEXIST;
        internal const int EXDEV = Libc.EXDEV;
        internal const int ENOTDIR = Libc.ENOTDIR;
        internal const int EISDIR = Libc.EISDIR;
        internal const int EINVAL = Libc.EINVAL;
        internal const int EILSEQ = Libc.EILSEQ;
        internal const int ENOTTY = Libc.ENOTTY;
        internal const int ETXTBSY = Libc.ETXTBSY;
        internal const int ENOSPC = Libc.ENOSPC;
        internal const int EROFS = Libc.EROFS;
        internal const int EMLINK = Libc.EMLINK;
        internal const int ERANGE = Libc.ERANGE;
        internal const int ENAMETOOLONG = Libc.ENAMETOOLONG;
        internal const int ENOSYS = Libc.ENOSYS;
        internal const int ELOOP = Libc.ELOOP;
        internal const int ENODATA = Libc.ENODATA;
        internal const int EOPNOTSUPP = Libc.EOPNOTSUPP;
        internal const int EDQUOT = Libc.EDQUOT;
        internal const int ENOTEMPTY = Libc.ENOTEMPTY;
        internal const int ESTALE = Libc.ESTALE;

        /// <summary>The errno of the last failed call on this thread.</summary>
        internal static int Last => Marshal.GetLastPInvokeError();

        /// <summary>The errno's symbolic name ("ENOENT").</summary>
        internal static string Name(int errno) => Libc.ErrnoName(errno);

        /// <summary>The error of the call that just failed on this thread: <paramref name="what"/> ("Cannot open") '<paramref name="path"/>', the reason, the call and errno, and the advice.</summary>
        internal static FileOperationException Failure(string syscall, string path, string what, string? advice = null) =>
            FileOperationException.FromErrno(Marshal.GetLastPInvokeError(), syscall, path, what, advice);

        /// <summary>Throws <see cref="Failure"/> when <paramref name="result"/> is negative; returns it otherwise.</summary>
        internal static int Check(int result, string syscall, string path, string what, string? advice = null) =>
            result < 0 ? throw Failure(syscall, path, what, advice) : result;

        /// <summary>Throws <see cref="Failure"/> when <paramref name="result"/> is negative; returns it otherwise.</summary>
        internal static long Check(long result, string syscall, string path, string what, string? advice = null) =>
            result < 0 ? throw Failure(syscall, path, what, advice) : result;

        /// <summary>A descriptor just returned by open/openat: itself, or (closed) the error.</summary>
        internal static SafeFileDescriptor Check(SafeFileDescriptor fd, string syscall, string path, string what, string? advice = null)
        {
            if (!fd.IsInvalid)
            {
                return fd;
            }

            int errno = Marshal.GetLastPInvokeError();
            fd.Dispose();
            throw FileOperationException.FromErrno(errno, syscall, path, what, advice);
        }
    }
}

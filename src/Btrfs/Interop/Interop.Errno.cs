namespace Btrfs.Interop
{
    using System.Runtime.InteropServices;

    /// <summary>errno values (Linux, x86_64 and arm64 share them) and their names.</summary>
    internal static partial class Libc
    {
        internal const int EPERM = 1;
        internal const int ENOENT = 2;
        internal const int EINTR = 4;
        internal const int EIO = 5;
        internal const int ENXIO = 6;
        internal const int EBADF = 9;
        internal const int EAGAIN = 11;
        internal const int ENOMEM = 12;
        internal const int EACCES = 13;
        internal const int EFAULT = 14;
        internal const int EBUSY = 16;
        internal const int EEXIST = 17;
        internal const int EXDEV = 18;
        internal const int ENODEV = 19;
        internal const int ENOTDIR = 20;
        internal const int EISDIR = 21;
        internal const int EINVAL = 22;
        internal const int ENOTTY = 25;
        internal const int ETXTBSY = 26;
        internal const int EFBIG = 27;
        internal const int ENOSPC = 28;
        internal const int EROFS = 30;
        internal const int EMLINK = 31;
        internal const int ENAMETOOLONG = 36;
        internal const int ENOSYS = 38;
        internal const int ELOOP = 40;
        internal const int EBADR = 53;
        internal const int EILSEQ = 84;
        internal const int EOPNOTSUPP = 95;
        internal const int EDQUOT = 122;
        internal const int ENOTEMPTY = 39;

        /// <summary>The symbolic name of an errno value ("ENOENT"), or "errno N" when unknown.</summary>
        internal static string ErrnoName(int errno) => errno switch
        {
            EPERM => "EPERM",
            ENOENT => "ENOENT",
            EINTR => "EINTR",
            EIO => "EIO",
            ENXIO => "ENXIO",
            EBADF => "EBADF",
            EAGAIN => "EAGAIN",
            ENOMEM => "ENOMEM",
            EACCES => "EACCES",
            EFAULT => "EFAULT",
            EBUSY => "EBUSY",
            EEXIST => "EEXIST",
            EXDEV => "EXDEV",
            ENODEV => "ENODEV",
            ENOTDIR => "ENOTDIR",
            EISDIR => "EISDIR",
            EINVAL => "EINVAL",
            EILSEQ => "EILSEQ",
            ENOTTY => "ENOTTY",
            ETXTBSY => "ETXTBSY",
            EFBIG => "EFBIG",
            ENOSPC => "ENOSPC",
            EROFS => "EROFS",
            EMLINK => "EMLINK",
            ENAMETOOLONG => "ENAMETOOLONG",
            ENOSYS => "ENOSYS",
            ELOOP => "ELOOP",
            EBADR => "EBADR",
            EOPNOTSUPP => "EOPNOTSUPP",
            EDQUOT => "EDQUOT",
            ENOTEMPTY => "ENOTEMPTY",
            ENODATA => "ENODATA",
            ERANGE => "ERANGE",
            ESTALE => "ESTALE",
            _ => "errno " + errno.ToString(System.Globalization.CultureInfo.InvariantCulture),
        };

        /// <summary>The C library's text for an errno value ("No such file or directory").</summary>
        internal static string StrError(int errno) => Marshal.GetPInvokeErrorMessage(errno);
    }
}

namespace Btrfs.Core
{
    using System;
    using System.Runtime.InteropServices;
    using Btrfs.Interop;

    /// <summary>The chattr(1) inode flags (FS_*_FL in include/uapi/linux/fs.h), bit for bit.</summary>
    [Flags]
    public enum InodeFlags : uint
    {
        /// <summary>No flag set.</summary>
        None = 0,

        /// <summary>FS_COMPR_FL (chattr +c): compress this file or new files in this directory (btrfs).</summary>
        Compress = 0x4,

        /// <summary>FS_SYNC_FL (chattr +S): synchronous updates.</summary>
        Sync = 0x8,

        /// <summary>FS_IMMUTABLE_FL (chattr +i): cannot be changed, renamed or deleted.</summary>
        Immutable = 0x10,

        /// <summary>FS_APPEND_FL (chattr +a): can only be appended to.</summary>
        AppendOnly = 0x20,

        /// <summary>FS_NODUMP_FL (chattr +d): skipped by dump(8).</summary>
        NoDump = 0x40,

        /// <summary>FS_NOATIME_FL (chattr +A): access time is not updated.</summary>
        NoAtime = 0x80,

        /// <summary>FS_NOCOMP_FL (chattr +m): never compress (btrfs).</summary>
        NoCompress = 0x400,

        /// <summary>FS_DIRSYNC_FL (chattr +D): synchronous directory updates.</summary>
        DirSync = 0x10000,

        /// <summary>FS_EXTENT_FL (ext4, read-only): the file uses extents.</summary>
        Extents = 0x80000,

        /// <summary>FS_NOCOW_FL (chattr +C): no copy-on-write (btrfs NODATACOW, which also means no checksums and no compression).</summary>
        NoCow = 0x800000,

        /// <summary>FS_PROJINHERIT_FL (chattr +P): new files inherit the project id.</summary>
        ProjectInherit = 0x20000000,
    }

    /// <summary>Reads and writes <see cref="InodeFlags"/> through FS_IOC_GETFLAGS / FS_IOC_SETFLAGS.</summary>
    internal static class InodeFlagsIo
    {
        /// <summary>
        /// The flags a rewrite carries from an original to its copy: the ones about how the file is
        /// used, not about where its data is (NOCOW and compression are the caller's to decide;
        /// immutable and append-only files are never rewritten).
        /// </summary>
        internal const InodeFlags Carried = InodeFlags.Sync | InodeFlags.NoDump | InodeFlags.NoAtime | InodeFlags.DirSync | InodeFlags.ProjectInherit;

        /// <summary>The flags, or null where the filesystem has no inode flags (ENOTTY, EOPNOTSUPP).</summary>
        internal static unsafe InodeFlags? TryGet(SafeFileDescriptor fd, string path)
        {
            ulong value = 0; // the kernel writes 32 bits; the rest stays zero
            if (Libc.Ioctl(fd, Libc.FS_IOC_GETFLAGS, &value) != 0)
            {
                int errno = Marshal.GetLastPInvokeError();
                if (errno is Libc.ENOTTY or Libc.EOPNOTSUPP or Libc.EINVAL)
                {
                    return null;
                }

                throw FileOperationException.FromErrno(errno, "FS_IOC_GETFLAGS", path, "Cannot read the attributes of");
            }

            return (InodeFlags)(uint)value;
        }

        /// <summary>The flags, or <see cref="InodeFlags.None"/> where the filesystem has none.</summary>
        internal static InodeFlags Get(SafeFileDescriptor fd, string path) => TryGet(fd, path) ?? InodeFlags.None;

        /// <summary>Sets the flags, then reads them back (the kernel may accept a change and not make it) and returns what is there now.</summary>
        internal static unsafe InodeFlags Set(SafeFileDescriptor fd, string path, InodeFlags flags)
        {
            ulong value = (uint)flags;
            if (Libc.Ioctl(fd, Libc.FS_IOC_SETFLAGS, &value) != 0)
            {
                int errno = Marshal.GetLastPInvokeError();
                throw FileOperationException.FromErrno(errno, "FS_IOC_SETFLAGS", path, "Cannot change the attributes of", SetAdvice(errno));
            }

            return Get(fd, path);
        }

        private static string? SetAdvice(int errno) => errno switch
        {
            Libc.EPERM or Libc.EACCES => "Only the file's owner (or root) can change its attributes.",
            _ => null,
        };
    }
}

namespace Btrfs.Kernel
{
    using System.Runtime.InteropServices;
    using Btrfs.Core;
    using Btrfs.Interop;

    /// <summary>Reads and writes <see cref="InodeFlags"/> through FS_IOC_GETFLAGS / FS_IOC_SETFLAGS.</summary>
    internal static class InodeAttributes
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

        /// <summary>
        /// The inode's generation (FS_IOC_GETVERSION; btrfs, xfs, ext4): with the inode number it names one file, since a
        /// file made later under a number freed by a deleted one (xfs reuses numbers at once) has another generation. Null
        /// where the filesystem does not say (tmpfs) or the call fails.
        /// </summary>
        internal static unsafe uint? TryGetGeneration(SafeFileDescriptor fd)
        {
            ulong value = 0; // the kernel writes 32 bits
            return Libc.Ioctl(fd, Libc.FS_IOC_GETVERSION, &value) == 0 ? (uint)value : null;
        }

        /// <summary>The flags, or <see cref="InodeFlags.None"/> where the filesystem has none.</summary>
        internal static InodeFlags Get(SafeFileDescriptor fd, string path) => TryGet(fd, path) ?? InodeFlags.None;

        /// <summary>Sets the flags, then reads them back (the kernel may accept a change and not make it) and returns what is there now.</summary>
        internal static InodeFlags Set(SafeFileDescriptor fd, string path, InodeFlags flags)
        {
            // btrfs judges NOCOW against the flags the file has now (check_fsflags): NOCOW on and compression off in
            // one call is EINVAL for a file that inherited compression from its directory (chattr +c or +m, or
            // btrfs property set DIR compression). Compression off first, then NOCOW.
            const InodeFlags Compression = InodeFlags.Compress | InodeFlags.NoCompress;
            if ((flags & InodeFlags.NoCow) != 0 && (flags & Compression) == 0)
            {
                InodeFlags now = Get(fd, path);
                if ((now & InodeFlags.NoCow) == 0 && (now & Compression) != 0)
                {
                    SetOnce(fd, path, now & ~Compression);
                }
            }

            SetOnce(fd, path, flags);
            return Get(fd, path);
        }

        private static unsafe void SetOnce(SafeFileDescriptor fd, string path, InodeFlags flags)
        {
            ulong value = (uint)flags;
            if (Libc.Ioctl(fd, Libc.FS_IOC_SETFLAGS, &value) != 0)
            {
                int errno = Marshal.GetLastPInvokeError();
                throw FileOperationException.FromErrno(errno, "FS_IOC_SETFLAGS", path, "Cannot change the attributes of", SetAdvice(errno));
            }
        }

        private static string? SetAdvice(int errno) => errno switch
        {
            Libc.EPERM or Libc.EACCES => "Only the file's owner (or root) can change its attributes.",
            _ => null,
        };
    }
}

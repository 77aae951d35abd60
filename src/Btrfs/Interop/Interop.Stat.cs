namespace Btrfs.Interop
{
    using System.Runtime.InteropServices;

    /// <summary>
    /// statx(2): one layout on every architecture (unlike struct stat), so no per-arch structs.
    /// With AT_EMPTY_PATH and an empty path it is fstat(2) of the descriptor.
    /// </summary>
    internal static partial class Libc
    {
        internal const int AT_FDCWD = -100;
        internal const int AT_SYMLINK_NOFOLLOW = 0x100;
        internal const int AT_EMPTY_PATH = 0x1000;

        /// <summary>Do not trigger an automount at the last component (an autofs trigger directory is examined, not mounted).</summary>
        internal const int AT_NO_AUTOMOUNT = 0x800;

        /// <summary>statx: take what the kernel has cached; a network or FUSE filesystem is not asked (uapi/linux/fcntl.h).</summary>
        internal const int AT_STATX_DONT_SYNC = 0x4000;

        internal const uint STATX_TYPE = 0x1;
        internal const uint STATX_MODE = 0x2;
        internal const uint STATX_NLINK = 0x4;
        internal const uint STATX_UID = 0x8;
        internal const uint STATX_GID = 0x10;
        internal const uint STATX_ATIME = 0x20;
        internal const uint STATX_MTIME = 0x40;
        internal const uint STATX_CTIME = 0x80;
        internal const uint STATX_INO = 0x100;
        internal const uint STATX_SIZE = 0x200;
        internal const uint STATX_BLOCKS = 0x400;
        internal const uint STATX_BASIC_STATS = 0x7ff;
        internal const uint STATX_BTIME = 0x800;
        internal const uint STATX_MNT_ID = 0x1000;

        /// <summary>stx_attributes bits (chattr flags the kernel reports through statx).</summary>
        internal const ulong STATX_ATTR_COMPRESSED = 0x4;
        internal const ulong STATX_ATTR_IMMUTABLE = 0x10;
        internal const ulong STATX_ATTR_APPEND = 0x20;

        internal const ushort S_IFMT = 0xF000;
        internal const ushort S_IFSOCK = 0xC000;
        internal const ushort S_IFLNK = 0xA000;
        internal const ushort S_IFREG = 0x8000;
        internal const ushort S_IFBLK = 0x6000;
        internal const ushort S_IFDIR = 0x4000;
        internal const ushort S_IFCHR = 0x2000;
        internal const ushort S_IFIFO = 0x1000;

        /// <summary>struct statx (include/uapi/linux/stat.h), 256 bytes.</summary>
        [StructLayout(LayoutKind.Explicit, Size = 256)]
        internal struct StatX
        {
            [FieldOffset(0)] public uint Mask;
            [FieldOffset(4)] public uint BlkSize;
            [FieldOffset(8)] public ulong Attributes;
            [FieldOffset(16)] public uint Nlink;
            [FieldOffset(20)] public uint Uid;
            [FieldOffset(24)] public uint Gid;
            [FieldOffset(28)] public ushort Mode;
            [FieldOffset(32)] public ulong Ino;
            [FieldOffset(40)] public ulong Size;
            [FieldOffset(48)] public ulong Blocks;
            [FieldOffset(56)] public ulong AttributesMask;
            [FieldOffset(64)] public StatXTimestamp Atime;
            [FieldOffset(80)] public StatXTimestamp Btime;
            [FieldOffset(96)] public StatXTimestamp Ctime;
            [FieldOffset(112)] public StatXTimestamp Mtime;
            [FieldOffset(128)] public uint RdevMajor;
            [FieldOffset(132)] public uint RdevMinor;
            [FieldOffset(136)] public uint DevMajor;
            [FieldOffset(140)] public uint DevMinor;
            [FieldOffset(144)] public ulong MountId;
        }

        /// <summary>struct statx_timestamp, 16 bytes.</summary>
        [StructLayout(LayoutKind.Explicit, Size = 16)]
        internal struct StatXTimestamp
        {
            [FieldOffset(0)] public long Seconds;
            [FieldOffset(8)] public uint Nanoseconds;
        }

        [LibraryImport(Name, EntryPoint = "statx", StringMarshalling = StringMarshalling.Utf8, SetLastError = true)]
        internal static partial int StatXAt(SafeFileDescriptor dirfd, string path, int flags, uint mask, out StatX buf);

        [LibraryImport(Name, EntryPoint = "statx", StringMarshalling = StringMarshalling.Utf8, SetLastError = true)]
        internal static partial int StatXPath(int dirfd, string path, int flags, uint mask, out StatX buf);

        /// <summary>statx(fd, "", AT_EMPTY_PATH, ...): the fstat(2) form.</summary>
        [LibraryImport(Name, EntryPoint = "statx", StringMarshalling = StringMarshalling.Utf8, SetLastError = true)]
        internal static partial int StatXDescriptor(SafeFileDescriptor fd, string emptyPath, int flags, uint mask, out StatX buf);
    }
}

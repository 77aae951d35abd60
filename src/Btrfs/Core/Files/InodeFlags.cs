namespace Btrfs.Core
{
    using System;
    using Btrfs.Kernel;

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

        /// <summary>FS_JOURNAL_DATA_FL (chattr +j, ext4): the file's data goes through the journal.</summary>
        JournalData = 0x4000,

        /// <summary>FS_DIRSYNC_FL (chattr +D): synchronous directory updates.</summary>
        DirSync = 0x10000,

        /// <summary>FS_EXTENT_FL (ext4, read-only): the file uses extents.</summary>
        Extents = 0x80000,

        /// <summary>FS_NOCOW_FL (chattr +C): no copy-on-write (btrfs NODATACOW, which also means no checksums and no compression).</summary>
        NoCow = 0x800000,

        /// <summary>FS_PROJINHERIT_FL (chattr +P): new files inherit the project id.</summary>
        ProjectInherit = 0x20000000,
    }
}

namespace Btrfs.Core
{
    using System.Globalization;
    using Btrfs.Interop;

    /// <summary>The filesystem a file lives on, from statfs(2) f_type.</summary>
    public enum FileSystemKind
    {
        /// <summary>Any filesystem not named below; see <see cref="FileSystemType.Magic"/>.</summary>
        Other = 0,

        /// <summary>btrfs (0x9123683E).</summary>
        Btrfs,

        /// <summary>XFS (0x58465342).</summary>
        Xfs,

        /// <summary>ext4, and ext2/ext3, which share its magic (0xEF53).</summary>
        Ext4,

        /// <summary>tmpfs (0x01021994): no FIEMAP.</summary>
        Tmpfs,
    }

    /// <summary>A filesystem identified by its statfs f_type magic number.</summary>
    public readonly record struct FileSystemType(FileSystemKind Kind, long Magic)
    {
        /// <summary>Classifies an f_type value.</summary>
        public static FileSystemType FromMagic(long magic)
        {
            // f_type is a signed word; btrfs' magic has bit 31 set, so compare the low 32 bits.
            long m = magic & 0xFFFFFFFFL;
            FileSystemKind kind = m switch
            {
                Libc.BTRFS_SUPER_MAGIC => FileSystemKind.Btrfs,
                Libc.XFS_SUPER_MAGIC => FileSystemKind.Xfs,
                Libc.EXT4_SUPER_MAGIC => FileSystemKind.Ext4,
                Libc.TMPFS_MAGIC => FileSystemKind.Tmpfs,
                _ => FileSystemKind.Other,
            };
            return new FileSystemType(kind, m);
        }

        /// <summary>A name for messages: "btrfs", "xfs", "ext4", "tmpfs", or "a filesystem with magic 0x…".</summary>
        public string DisplayName => Kind switch
        {
            FileSystemKind.Btrfs => "btrfs",
            FileSystemKind.Xfs => "xfs",
            FileSystemKind.Ext4 => "ext4",
            FileSystemKind.Tmpfs => "tmpfs",
            _ => "a filesystem with magic 0x" + Magic.ToString("X8", CultureInfo.InvariantCulture),
        };

        /// <inheritdoc/>
        public override string ToString() => DisplayName;
    }
}

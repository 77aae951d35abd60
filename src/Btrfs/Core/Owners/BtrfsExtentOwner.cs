namespace Btrfs.Core
{
    /// <summary>
    /// One reference to a btrfs data extent: which subvolume (or snapshot) and inode use it, at which
    /// offset of the file, and the file's path when that subvolume is reachable under a mount.
    /// </summary>
    public sealed class BtrfsExtentOwner
    {
        /// <summary>Creates an owner record.</summary>
        public BtrfsExtentOwner(long diskAddress, long subvolumeId, string? subvolumePath, long inode, long fileOffset, string? path, string? whyNoPath = null)
        {
            WhyNoPath = path is null ? whyNoPath ?? "it has no path here" : null;
            DiskAddress = diskAddress;
            SubvolumeId = subvolumeId;
            SubvolumePath = subvolumePath;
            Inode = inode;
            FileOffset = fileOffset;
            Path = path;
        }

        /// <summary>btrfs logical address of the extent (its disk_bytenr).</summary>
        public long DiskAddress { get; }

        /// <summary>Id of the subvolume or snapshot whose file references the extent (5: the top level).</summary>
        public long SubvolumeId { get; }

        /// <summary>The subvolume's path from the top level of the filesystem ("/" for the top level, "/snapshots/daily"); null when the subvolume has no name (being deleted).</summary>
        public string? SubvolumePath { get; }

        /// <summary>Inode number of the file in that subvolume.</summary>
        public long Inode { get; }

        /// <summary>Offset in the file where the referencing item starts.</summary>
        public long FileOffset { get; }

        /// <summary>The file's full path (one record per hard link); null, with a warning, when the subvolume is not mounted anywhere or the inode has no name.</summary>
        public string? Path { get; }

        /// <summary>Why <see cref="Path"/> is null ("its name is not valid UTF-8", "its subvolume is not reachable under a mount", ...); null with a path.</summary>
        public string? WhyNoPath { get; }
    }
}

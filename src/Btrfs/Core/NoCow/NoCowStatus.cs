namespace Btrfs.Core
{
    /// <summary>Whether a path is a file or a directory.</summary>
    public enum FileItemType
    {
        /// <summary>A regular file.</summary>
        File,

        /// <summary>A directory.</summary>
        Directory,
    }

    /// <summary>
    /// Whether NOCOW is really in effect for a file or directory, and why: Test-NoCow -Detailed.
    /// Every property is a scalar, so Where-Object, Export-Csv and remoting keep the values.
    /// </summary>
    public sealed class NoCowStatus
    {
        /// <summary>Creates the record.</summary>
        public NoCowStatus(
            string path,
            FileItemType itemType,
            FileSystemKind fileSystem,
            bool supported,
            bool isNoCow,
            bool mountNoDataCow,
            bool? directoryIsNoCow,
            bool isCompressed,
            long size,
            long sharedBytes,
            long sharedExtentCount,
            string[] reason)
        {
            Path = path;
            ItemType = itemType;
            FileSystem = fileSystem;
            Supported = supported;
            IsNoCow = isNoCow;
            MountNoDataCow = mountNoDataCow;
            DirectoryIsNoCow = directoryIsNoCow;
            IsCompressed = isCompressed;
            Size = size;
            SharedBytes = sharedBytes;
            SharedExtentCount = sharedExtentCount;
            Reason = reason;
        }

        /// <summary>The path as given (after wildcard expansion).</summary>
        public string Path { get; }

        /// <summary>The file's name (the last part of <see cref="Path"/>), as the table shows it.</summary>
        public string Name => System.IO.Path.GetFileName(Path);

        /// <summary>File or Directory.</summary>
        public FileItemType ItemType { get; }

        /// <summary>The filesystem the item lives on.</summary>
        public FileSystemKind FileSystem { get; }

        /// <summary>The filesystem has a NOCOW attribute (only btrfs has one).</summary>
        public bool Supported { get; }

        /// <summary>The NOCOW attribute (chattr +C, FS_NOCOW_FL) is set on the item: for a directory, new files in it inherit it.</summary>
        public bool IsNoCow { get; }

        /// <summary>
        /// Test-NoCow's answer: for a file, <see cref="IsNoCow"/>; for a directory, whether files created in it will be
        /// NOCOW: its attribute, or the filesystem mounted with nodatacow (unless it has the compression attribute).
        /// </summary>
        public bool NoCowInEffect { get; init; }

        /// <summary>The filesystem is mounted with nodatacow (new files get NOCOW).</summary>
        public bool MountNoDataCow { get; }

        /// <summary>The parent directory has the NOCOW attribute; null when this user cannot read the parent's attributes (a directory it may search but not read, mode 0711).</summary>
        public bool? DirectoryIsNoCow { get; }

        /// <summary>Compression applies to what is written to it: the compression attribute (chattr +c) or property, or a compress mount option; never for a NOCOW item.</summary>
        public bool IsCompressed { get; }

        /// <summary>File size in bytes (0 for directories).</summary>
        public long Size { get; }

        /// <summary>Bytes in extents FIEMAP reports as shared with a reflink copy or snapshot: a NOCOW file writes them once more as COW.</summary>
        public long SharedBytes { get; }

        /// <summary>Number of extents FIEMAP reports as shared.</summary>
        public long SharedExtentCount { get; }

        /// <summary>Why NOCOW is or is not in effect, and what to do: one sentence per fact, the verdict first.</summary>
        public string[] Reason { get; }

        /// <summary>The reason as one line (the sentences joined), for CSV and logs.</summary>
        public string ReasonText => string.Join(" ", Reason);
    }
}

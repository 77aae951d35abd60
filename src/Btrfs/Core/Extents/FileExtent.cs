namespace Btrfs.Core
{
    /// <summary>
    /// One extent of a file as FIEMAP reports it, or a hole between extents. Every property is a
    /// scalar: byte counts are bytes, flags are an enum, so filters, sorting and CSV export see the
    /// real values.
    /// </summary>
    public sealed class FileExtent
    {
        /// <summary>Creates a record.</summary>
        public FileExtent(string path, long index, long logicalOffset, long physicalOffset, long length, ExtentFlags flags, bool isHole, FileSystemKind fileSystem)
        {
            Path = path;
            Index = index;
            LogicalOffset = logicalOffset;
            PhysicalOffset = physicalOffset;
            Length = length;
            Flags = flags;
            IsHole = isHole;
            FileSystem = fileSystem;
        }

        /// <summary>The file's path.</summary>
        public string Path { get; }

        /// <summary>0-based position of this record in the output for this file (holes included when requested).</summary>
        public long Index { get; }

        /// <summary>Byte offset of the extent in the file.</summary>
        public long LogicalOffset { get; }

        /// <summary>
        /// Byte offset of the data on the device. On btrfs this is a btrfs logical address, not a device
        /// offset. 0 for holes, inline and delalloc extents.
        /// </summary>
        public long PhysicalOffset { get; }

        /// <summary>Length in bytes (for compressed btrfs extents: the decompressed length).</summary>
        public long Length { get; }

        /// <summary>LogicalOffset + Length: the first byte after the extent (at most long.MaxValue, the largest file size).</summary>
        public long EndOffset => Btrfs.Kernel.ByteRange.EndOf(LogicalOffset, Length);

        /// <summary>The FIEMAP flags; None for holes.</summary>
        public ExtentFlags Flags { get; }

        /// <summary>The space may be shared with another file or snapshot (reflink, dedupe).</summary>
        public bool IsShared => (Flags & ExtentFlags.Shared) != 0;

        /// <summary>The data is compressed (FIEMAP_EXTENT_ENCODED).</summary>
        public bool IsCompressed => (Flags & ExtentFlags.Encoded) != 0;

        /// <summary>The data is stored inline in the metadata.</summary>
        public bool IsInline => (Flags & ExtentFlags.DataInline) != 0;

        /// <summary>Preallocated space that has not been written (reads as zeros).</summary>
        public bool IsUnwritten => (Flags & ExtentFlags.Unwritten) != 0;

        /// <summary>Delayed allocation: the data is not on disk yet (use -Sync to flush first).</summary>
        public bool IsDelalloc => (Flags & ExtentFlags.Delalloc) != 0;

        /// <summary>
        /// The filesystem marked this as the last extent (FIEMAP_EXTENT_LAST): of the file on btrfs; with a range
        /// (-Offset, -Length) on xfs and ext4, of the range (their kernels mark the last extent they return).
        /// </summary>
        public bool IsLast => (Flags & ExtentFlags.Last) != 0;

        /// <summary>A gap with no extent (sparse file); only emitted when holes are requested.</summary>
        public bool IsHole { get; }

        /// <summary>The filesystem the file lives on.</summary>
        public FileSystemKind FileSystem { get; }
    }
}

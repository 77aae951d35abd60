namespace Btrfs.Core
{
    /// <summary>
    /// Test-BtrfsSwapfile -Detailed: would swapon accept the file and keep it safe, rule by rule, with
    /// a Reason naming every failed rule and its fix. Rules that do not apply on the filesystem
    /// (NOCOW, devices and profiles outside btrfs) read as passed.
    /// </summary>
    public sealed class SwapfileStatus
    {
        /// <summary>The file.</summary>
        public string Path { get; init; } = string.Empty;

        /// <summary>The file's name (the last part of <see cref="Path"/>), as the table shows it.</summary>
        public string Name => System.IO.Path.GetFileName(Path);

        /// <summary>File size in bytes.</summary>
        public long Size { get; init; }

        /// <summary>The filesystem it lives on.</summary>
        public FileSystemKind FileSystem { get; init; }

        /// <summary>Every rule passes: swapon will accept it, and it is safe.</summary>
        public bool IsValid { get; init; }

        /// <summary>Listed in /proc/swaps: in use as swap now.</summary>
        public bool IsActive { get; init; }

        /// <summary>btrfs: NOCOW (so also no checksums). Required there.</summary>
        public bool IsNoCow { get; init; }

        /// <summary>The compression attribute (chattr +c) is set, or some of its data is compressed. Must be false.</summary>
        public bool IsCompressed { get; init; }

        /// <summary>The filesystem's compression mount option, if any (a NOCOW file is not compressed by it).</summary>
        public string? MountCompressOption { get; init; }

        /// <summary>Every byte is allocated: no holes, no delayed allocation, nothing inline (preallocated but unwritten is fine).</summary>
        public bool FullyAllocated { get; init; }

        /// <summary>Some extents are shared with a reflink copy or snapshot. Must be false.</summary>
        public bool IsShared { get; init; }

        /// <summary>The first page holds a version 1 swap header ("SWAPSPACE2", as mkswap writes it).</summary>
        public bool HasSwapSignature { get; init; }

        /// <summary>The mode is 0600: nobody but root can read what is swapped out.</summary>
        public bool Permissions0600 { get; init; }

        /// <summary>Owned by root (uid 0): otherwise the owner can read and change what is swapped out (swapon warns "insecure file owner").</summary>
        public bool OwnedByRoot { get; init; }

        /// <summary>btrfs: every extent of the file is on one device (certain on a single-device filesystem).</summary>
        public bool SingleDevice { get; init; }

        /// <summary>btrfs: the data the file lives in has the single profile (no RAID, no DUP).</summary>
        public bool SingleDataProfile { get; init; }

        /// <summary>The header's size (last_page + 1 pages) fits the file: no more than its whole pages, as swapon asks (fewer are taken: swapon then uses only those; the Reason says so).</summary>
        public bool SizeMatchesHeader { get; init; }

        /// <summary>The swap area's UUID from the header (empty without one).</summary>
        public string Uuid { get; init; } = string.Empty;

        /// <summary>The swap area's label from the header.</summary>
        public string Label { get; init; } = string.Empty;

        /// <summary>"valid", or every failed rule with how to fix it.</summary>
        public string[] Reason { get; init; } = System.Array.Empty<string>();

        /// <summary>
        /// For hibernation: the resume_offset= kernel parameter, the physical offset on the device of the
        /// file's first page in page-size units (as btrfs inspect-internal map-swapfile -r prints it).
        /// Null when it cannot be known: no data at the start of the file, or (btrfs, not root) the chunk map is out of reach;
        /// or when there is none: a layout that can still move (not NOCOW on btrfs, holes, shared or compressed data), or a
        /// first block not on a page boundary (blocks smaller than a page; the Reason says so).
        /// </summary>
        public long? ResumeOffset { get; init; }

        /// <summary>The reason as one line (the rules joined with "; "), for CSV and logs.</summary>
        public string ReasonText => string.Join("; ", Reason);
    }
}

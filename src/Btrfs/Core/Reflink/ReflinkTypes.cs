namespace Btrfs.Core
{
    using System;
    using Btrfs.Kernel;

    /// <summary>How a copy was made.</summary>
    public enum ReflinkMethod
    {
        /// <summary>The extents are shared (FICLONE / FICLONERANGE): no data was copied.</summary>
        Reflink,

        /// <summary>The data was copied (reflink impossible and -Fallback Copy given).</summary>
        Copy,
    }

    /// <summary>What to do when a reflink is impossible.</summary>
    public enum ReflinkFallback
    {
        /// <summary>Nothing: an error says why.</summary>
        None,

        /// <summary>Copy the data instead, like cp --reflink=auto.</summary>
        Copy,
    }

    /// <summary>How to make one reflink copy.</summary>
    public sealed record ReflinkOptions
    {
        /// <summary>Replace (or, with a range, write into) an existing destination.</summary>
        public bool Force { get; init; }

        /// <summary>Replacing a destination where no write lease can prove that nobody has it open: rely on the /proc scan alone.</summary>
        public bool AssumeNotInUse { get; init; }

        /// <summary>What to do when a reflink is impossible.</summary>
        public ReflinkFallback Fallback { get; init; }

        /// <summary>First byte of the source range; null for a whole-file copy.</summary>
        public long? SourceOffset { get; init; }

        /// <summary>Bytes of the range; null to the source's end.</summary>
        public long? Length { get; init; }

        /// <summary>Where the range goes in the destination; null for the source offset.</summary>
        public long? DestinationOffset { get; init; }

        /// <summary>Keep mode, owner, group and timestamps (cp -p).</summary>
        public bool Preserve { get; init; }

        /// <summary>A source with more extents than this gets a warning: a clone costs time per extent.</summary>
        public long ManyExtents { get; init; } = 10_000;

        internal bool IsRange => SourceOffset is not null || Length is not null || DestinationOffset is not null;
    }

    /// <summary>New-BtrfsReflink's result: one per file created (or written into). Every property is a scalar.</summary>
    public sealed class ReflinkResult
    {
        /// <summary>The new (or written) file: pipe it on to Get-BtrfsExtent, Test-NoCow or Measure-Fragmentation.</summary>
        public string Path { get; init; } = string.Empty;

        /// <summary>The file's name (the last part of <see cref="Path"/>), as the table shows it.</summary>
        public string Name => System.IO.Path.GetFileName(Path);

        /// <summary>The source file.</summary>
        public string Source { get; init; } = string.Empty;

        /// <summary>Bytes cloned or copied.</summary>
        public long Length { get; init; }

        /// <summary>Bytes of the new file in extents FIEMAP reports as shared, afterwards.</summary>
        public long SharedBytes { get; init; }

        /// <summary>Reflink, or Copy when the data had to be copied.</summary>
        public ReflinkMethod Method { get; init; }

        /// <summary>Wall time.</summary>
        public TimeSpan Duration { get; init; }
    }
}

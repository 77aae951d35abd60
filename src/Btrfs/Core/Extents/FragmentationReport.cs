namespace Btrfs.Core
{
    /// <summary>
    /// How fragmented one file is: Measure-Fragmentation's object. Every property is a scalar (bytes
    /// in bytes), so Where-Object, Sort-Object, Export-Csv and remoting keep the values.
    /// </summary>
    public sealed class FragmentationReport
    {
        internal FragmentationReport(string path, FileSystemKind fileSystem, long size, long threshold, FragmentationCounter c, bool isNoCow)
        {
            Path = path;
            FileSystem = fileSystem;
            Size = size;
            Threshold = threshold;
            ExtentCount = c.ExtentCount;
            FragmentCount = c.FragmentCount;
            SmallExtentCount = c.SmallExtentCount;
            SmallExtentBytes = c.SmallExtentBytes;
            LargestExtent = c.LargestExtent;
            AverageExtentSize = c.AverageExtentSize;
            SharedBytes = c.SharedBytes;
            CompressedBytes = c.CompressedBytes;
            UnwrittenBytes = c.UnwrittenBytes;
            HoleBytes = c.HoleBytes;
            IsNoCow = isNoCow;
            FragmentationScore = c.Score;
            BestExtentCount = c.BestExtentCount;
        }

        /// <summary>The file.</summary>
        public string Path { get; }

        /// <summary>The file's name (the last part of <see cref="Path"/>), as the table shows it.</summary>
        public string Name => System.IO.Path.GetFileName(Path);

        /// <summary>The filesystem it lives on.</summary>
        public FileSystemKind FileSystem { get; }

        /// <summary>File size in bytes.</summary>
        public long Size { get; }

        /// <summary>The threshold the small-extent figures and the score were measured against, in bytes.</summary>
        public long Threshold { get; }

        /// <summary>Extents as FIEMAP reports them (filefrag -v lines).</summary>
        public long ExtentCount { get; }

        /// <summary>Runs of physically contiguous extents (filefrag's "N extents found"; compressed pieces laid out one after another count once).</summary>
        public long FragmentCount { get; }

        /// <summary>Extents shorter than the threshold, not counting the final extent, inline or unwritten extents: what a defrag with this threshold would rewrite.</summary>
        public long SmallExtentCount { get; }

        /// <summary>Bytes in those small extents.</summary>
        public long SmallExtentBytes { get; }

        /// <summary>The longest extent in bytes.</summary>
        public long LargestExtent { get; }

        /// <summary>Bytes in extents divided by their number.</summary>
        public long AverageExtentSize { get; }

        /// <summary>Bytes in extents shared with a reflink copy or snapshot.</summary>
        public long SharedBytes { get; }

        /// <summary>Bytes in compressed extents (decompressed length).</summary>
        public long CompressedBytes { get; }

        /// <summary>Bytes preallocated but not written.</summary>
        public long UnwrittenBytes { get; }

        /// <summary>Bytes of the file that no extent covers (sparse holes).</summary>
        public long HoleBytes { get; }

        /// <summary>The NOCOW attribute is set (btrfs).</summary>
        public bool IsNoCow { get; }

        /// <summary>0–100: the share of written bytes in fragments shorter than the threshold (the final fragment excepted); 0 = laid out as well as the filesystem allows.</summary>
        public int FragmentationScore { get; }

        /// <summary>The fewest extents the file could have (e4defrag -c's "best"): one per run of data between holes, more where a run is longer than the filesystem's largest extent.</summary>
        public long BestExtentCount { get; }
    }
}

namespace Btrfs.Core
{
    using System;
    using Btrfs.Kernel;

    /// <summary>Measure-Fragmentation -Summary: totals over every file measured.</summary>
    public sealed class FragmentationSummary
    {
        /// <summary>Files measured.</summary>
        public long Files { get; private set; }

        /// <summary>
        /// Sum of their sizes (apparent: holes count). Sparse files can be as large as 8 EiB each, so the sum stops at
        /// long.MaxValue (about 8 EiB) instead of wrapping round to a negative number.
        /// </summary>
        public long Bytes { get; private set; }

        /// <summary>Sum of their extents.</summary>
        public long ExtentCount { get; private set; }

        /// <summary>Sum of their fragments.</summary>
        public long FragmentCount { get; private set; }

        /// <summary>Sum of their small extents.</summary>
        public long SmallExtentCount { get; private set; }

        /// <summary>Bytes in small extents.</summary>
        public long SmallExtentBytes { get; private set; }

        /// <summary>Bytes shared with reflink copies or snapshots.</summary>
        public long SharedBytes { get; private set; }

        /// <summary>The longest extent of any file.</summary>
        public long LargestExtent { get; private set; }

        /// <summary>The threshold used, in bytes.</summary>
        public long Threshold { get; internal set; }

        /// <summary>The file with the most fragments; null when no file measured is fragmented (none has 2 or more).</summary>
        public string? MostFragmentedPath { get; private set; }

        /// <summary>Its fragment count (0 when no file is fragmented).</summary>
        public long MostFragmentedCount { get; private set; }

        /// <summary>Adds one file's figures.</summary>
        public void Add(FragmentationReport r)
        {
            ArgumentNullException.ThrowIfNull(r);
            Files++;
            Bytes = SizeFormatter.AddSize(Bytes, r.Size);
            ExtentCount += r.ExtentCount;
            FragmentCount += r.FragmentCount;
            SmallExtentCount += r.SmallExtentCount;
            SmallExtentBytes += r.SmallExtentBytes;
            SharedBytes += r.SharedBytes;
            LargestExtent = Math.Max(LargestExtent, r.LargestExtent);
            if (r.FragmentCount > Math.Max(MostFragmentedCount, 1))
            {
                MostFragmentedPath = r.Path;
                MostFragmentedCount = r.FragmentCount;
            }
        }
    }
}

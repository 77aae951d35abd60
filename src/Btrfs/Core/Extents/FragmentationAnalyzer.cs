namespace Btrfs.Core
{
    using System;
    using System.Collections.Generic;
    using Btrfs.Kernel;

    /// <summary>Measure-Fragmentation's Core: one streamed FIEMAP pass per file, constant memory.</summary>
    public static class FragmentationAnalyzer
    {
        /// <summary>The default threshold: 32 MiB, as btrfs filesystem defragment -t and Invoke-BtrfsDefrag -ExtentThreshold.</summary>
        public const long DefaultThreshold = 32L << 20;

        /// <summary>Measures a regular file (symbolic links are followed). Throws <see cref="FileOperationException"/>.</summary>
        public static FragmentationReport Measure(string path, long threshold = DefaultThreshold)
        {
            using OpenFile file = OpenFile.OpenRead(path);
            return Measure(file, threshold);
        }

        /// <summary>Measures an open file.</summary>
        internal static FragmentationReport Measure(OpenFile file, long threshold = DefaultThreshold)
        {
            ArgumentNullException.ThrowIfNull(file);
            FragmentationCounter c = Count(file, threshold, sync: false);
            bool noCow = file.FileSystem.Kind == FileSystemKind.Btrfs && (InodeAttributes.Get(file.Handle, file.Path) & InodeFlags.NoCow) != 0;
            return new FragmentationReport(file.Path, file.FileSystem.Kind, file.Size, threshold, c, noCow);
        }

        /// <summary>Measures several files on <paramref name="parallelism"/> threads; outcomes in the order given.</summary>
        internal static FileOutcome<FragmentationReport>[] MeasureAll(IReadOnlyList<FileLocation> files, long threshold, int parallelism) =>
            FileBatch.Run(files, parallelism, file => Measure(file, threshold));

        /// <summary>The counters of one FIEMAP pass over the whole file.</summary>
        internal static FragmentationCounter Count(OpenFile file, long threshold, bool sync) =>
            FragmentationCounter.Of(Fiemap.Read(file, 0, ulong.MaxValue, sync), threshold, file.FileSystem.Kind, file.Size);
    }
}

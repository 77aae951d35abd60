namespace Btrfs.Core
{
    using System;
    using System.Collections.Generic;
    using System.Threading.Tasks;
    using Btrfs.Kernel;

    /// <summary>What one file of a batch gave: its result, or why there is none.</summary>
    public readonly record struct FileOutcome<T>(string Path, T? Result, FileOperationException? Error)
        where T : class;

    /// <summary>
    /// Runs the same read-only work on a batch of files on several threads and returns the outcomes
    /// in the order given: the kernel's work for one file (open, ioctls) overlaps another's, and
    /// callers still emit in walk order.
    /// </summary>
    internal static class FileBatch
    {
        /// <summary>
        /// Opens each regular file the tree walker listed, relative to its directory (never by its path
        /// again, never through a symbolic link), and runs <paramref name="work"/> on it; a failure is
        /// that file's outcome. The locations' directories must stay open until this returns.
        /// </summary>
        internal static FileOutcome<T>[] Run<T>(IReadOnlyList<FileLocation> files, int parallelism, Func<OpenFile, T> work)
            where T : class
        {
            ArgumentNullException.ThrowIfNull(files);
            var fileSystems = new FileSystemCache();
            var outcomes = new FileOutcome<T>[files.Count];
            Parallel.For(0, files.Count, new ParallelOptions { MaxDegreeOfParallelism = Math.Max(1, parallelism) }, i =>
            {
                try
                {
                    using OpenFile file = OpenFile.Open(files[i], OpenOptions.KnownRegular, fileSystems);
                    outcomes[i] = new FileOutcome<T>(files[i].Path, work(file), null);
                }
                catch (FileOperationException ex)
                {
                    outcomes[i] = new FileOutcome<T>(files[i].Path, null, ex);
                }
            });
            return outcomes;
        }
    }
}

namespace Btrfs.Core
{
    using System;
    using System.Collections.Generic;
    using System.Threading.Tasks;

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
        /// Opens each path (<paramref name="fromWalk"/>: regular files the tree walker just listed)
        /// and runs <paramref name="work"/> on it; a failure is that file's outcome.
        /// </summary>
        internal static FileOutcome<T>[] Run<T>(IReadOnlyList<string> paths, int parallelism, bool fromWalk, Func<RegularFile, T> work)
            where T : class
        {
            ArgumentNullException.ThrowIfNull(paths);
            OpenOptions open = fromWalk ? OpenOptions.KnownRegular : OpenOptions.None;
            var fileSystems = new FileSystemCache();
            var outcomes = new FileOutcome<T>[paths.Count];
            Parallel.For(0, paths.Count, new ParallelOptions { MaxDegreeOfParallelism = Math.Max(1, parallelism) }, i =>
            {
                try
                {
                    using RegularFile file = RegularFile.Open(paths[i], open, fileSystems);
                    outcomes[i] = new FileOutcome<T>(paths[i], work(file), null);
                }
                catch (FileOperationException ex)
                {
                    outcomes[i] = new FileOutcome<T>(paths[i], null, ex);
                }
            });
            return outcomes;
        }
    }
}

namespace Btrfs.Core
{
    using System;
    using System.Collections.Generic;
    using Btrfs.Interop;
    using Btrfs.Kernel;

    /// <summary>
    /// Walked files queued for a <see cref="FileBatch"/>: each directory's descriptor is duplicated
    /// once per batch, so the batch can open its files relative to their directories on other threads
    /// after the walker has moved on (and closed its own descriptors). Disposing closes the duplicates.
    /// </summary>
    internal sealed class FileBatchLocations : IDisposable
    {
        private readonly List<FileLocation> locations;
        private readonly List<SafeFileDescriptor> owned = new();
        private SafeFileDescriptor? lastWalkerDirectory;
        private SafeFileDescriptor? lastCopy;

        internal FileBatchLocations(int capacity) => locations = new List<FileLocation>(capacity);

        internal int Count => locations.Count;

        internal IReadOnlyList<FileLocation> Locations => locations;

        internal void Add(FileLocation walked)
        {
            if (!ReferenceEquals(walked.Directory, lastWalkerDirectory))
            {
                lastCopy = DirectoryHandle.Duplicate(walked.Directory, walked.Path);
                owned.Add(lastCopy);
                lastWalkerDirectory = walked.Directory;
            }

            locations.Add(walked with { Directory = lastCopy! });
        }

        public void Dispose()
        {
            foreach (SafeFileDescriptor fd in owned)
            {
                fd.Dispose();
            }

            owned.Clear();
        }
    }
}

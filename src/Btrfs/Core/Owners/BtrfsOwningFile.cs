namespace Btrfs.Core
{
    using System.Collections.Generic;
    using System.Linq;
    using Btrfs.Kernel;

    /// <summary>
    /// Get-BtrfsExtentOwner's grouped answer: one file (in one subvolume or snapshot) that references
    /// data extents of the range asked about, with how many of those extents it uses, through how many
    /// references, and their size on disk.
    /// </summary>
    public sealed class BtrfsOwningFile
    {
        internal BtrfsOwningFile(long subvolumeId, string? subvolumePath, long inode, string? path, string? whyNoPath)
        {
            WhyNoPath = path is null ? whyNoPath : null;
            SubvolumeId = subvolumeId;
            SubvolumePath = subvolumePath;
            Inode = inode;
            Path = path;
        }

        /// <summary>The file's full path; null when its subvolume is not mounted anywhere or the inode has no name.</summary>
        public string? Path { get; }

        /// <summary>Why <see cref="Path"/> is null ("its name is not valid UTF-8", "its subvolume is not reachable under a mount", ...); null with a path.</summary>
        public string? WhyNoPath { get; }

        /// <summary>The file's name (the last part of <see cref="Path"/>), or "inode N" when it has no path.</summary>
        public string Name => Path is null ? "inode " + Inode.ToString(System.Globalization.CultureInfo.InvariantCulture) : System.IO.Path.GetFileName(Path);

        /// <summary>Id of the subvolume or snapshot the file is in (5: the top level).</summary>
        public long SubvolumeId { get; }

        /// <summary>The subvolume's path from the top level ("/" for the top level); null while it is being deleted.</summary>
        public string? SubvolumePath { get; }

        /// <summary>Inode number of the file in that subvolume.</summary>
        public long Inode { get; }

        /// <summary>Distinct data extents of the range that this file references.</summary>
        public long Extents { get; private set; }

        /// <summary>References from this file to those extents (a file can reference one extent at several offsets).</summary>
        public long References { get; private set; }

        /// <summary>Size on disk of those extents (each counted once): what this file keeps allocated of the range's data.</summary>
        public long ExtentBytes { get; private set; }

        /// <summary>Folds per-reference owners into one record per file (and per hard-link name), in the order first met.</summary>
        internal sealed class Grouping
        {
            private readonly Dictionary<(long, long, string?), (BtrfsOwningFile File, HashSet<long> Extents)> files = new();
            private readonly List<BtrfsOwningFile> order = new();

            internal void Add(ExtentOwnerList list, long extentBytes)
            {
                foreach (BtrfsExtentOwner o in list.Owners)
                {
                    var key = (o.SubvolumeId, o.Inode, o.Path);
                    if (!files.TryGetValue(key, out var entry))
                    {
                        entry = (new BtrfsOwningFile(o.SubvolumeId, o.SubvolumePath, o.Inode, o.Path, o.WhyNoPath), new HashSet<long>());
                        files.Add(key, entry);
                        order.Add(entry.File);
                    }

                    entry.File.References++;
                    if (entry.Extents.Add(o.DiskAddress))
                    {
                        entry.File.Extents++;
                        entry.File.ExtentBytes += extentBytes;
                    }
                }
            }

            /// <summary>
            /// The files, those of one directory (or of one unreachable subvolume) together, directories in the order first
            /// met: the table groups by directory, and a directory met again later was a second group with the same header
            /// (a hostile review: "Directory: /snap-rw" twice for one file's owners).
            /// </summary>
            internal IEnumerable<BtrfsOwningFile> Files => order.GroupBy(f => DirectoryLabel.Of(f.Path, f.SubvolumeId, f.SubvolumePath, f.WhyNoPath), System.StringComparer.Ordinal).SelectMany(g => g);
        }
    }
}

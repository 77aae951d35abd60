namespace Btrfs.Core
{
    using System;
    using System.Collections.Generic;
    using System.Linq;
    using System.Threading;
    using Btrfs.Kernel;

    /// <summary>
    /// Measure-BtrfsSubvolume's Core: collects the subvolumes asked about (each proven to be a
    /// subvolume's root, opened without following a link), grouped by filesystem, then measures each
    /// filesystem once (<see cref="SubvolumeSpaceMeter"/>) and answers for each subvolume, or for each
    /// filesystem's set together.
    /// </summary>
    internal sealed class SubvolumeUsageMeter : IDisposable
    {
        private readonly List<(Guid FileSystem, OpenFile Handle, List<(string? Path, string Label, ulong Id, Guid Uuid)> Members)> fileSystems = new();

        /// <summary>How many subvolumes were taken.</summary>
        internal int Count => fileSystems.Sum(f => f.Members.Count);

        /// <summary>
        /// Takes the subvolume whose root is <paramref name="path"/>; throws the refusal (not btrfs, not a
        /// subvolume's root, or, with <paramref name="expected"/>, another subvolume than the one named).
        /// </summary>
        internal void Add(string path, NamedSubvolume expected = default)
        {
            OpenFile file = OpenFile.Open(path, OpenOptions.AllowDirectory | OpenOptions.NoFollow);
            bool kept = false;
            try
            {
                BtrfsOnly.Require(file, "measure the subvolume", because: "only btrfs has subvolumes");
                if (!file.IsDirectory || file.Status.Inode != BtrfsInspect.SubvolumeRootInode)
                {
                    throw new FileOperationException(
                        FileErrorKind.NotASubvolume,
                        Errno.EINVAL,
                        "statx",
                        path,
                        $"Cannot measure '{path}': it is a {(file.IsDirectory ? "directory" : "file")} inside a subvolume, not a subvolume's root. Get-BtrfsSubvolume '{path}' shows the subvolume holding it.");
                }

                BtrfsRootRecord info = BtrfsSubvolumes.Info(file.Handle, path);
                expected.Check(info.Id, info.Uuid, "measure", path, string.Empty);
                kept = Take(file, (path, path, info.Id, info.Uuid));
            }
            finally
            {
                if (!kept)
                {
                    file.Dispose();
                }
            }
        }

        /// <summary>
        /// Takes subvolume <paramref name="id"/> of the btrfs holding <paramref name="onFileSystem"/> (any
        /// path on it): for a subvolume no mount reaches. An id the filesystem does not have is found out
        /// when it is measured (an error then, not zeros).
        /// </summary>
        internal void AddById(string onFileSystem, ulong id, NamedSubvolume expected = default)
        {
            OpenFile file = OpenFile.Open(onFileSystem, OpenOptions.AllowDirectory);
            bool kept = false;
            try
            {
                BtrfsOnly.Require(file, "measure the subvolume", because: "only btrfs has subvolumes");
                BtrfsRootRecord? now = RootItemOrNone(file, onFileSystem, id, mustRead: expected.Names);
                if (expected.Names && (now is null || !expected.Matches(id, now.Uuid)))
                {
                    // The object's path now leads to another filesystem (or the id was given to a new subvolume).
                    string label = $"subvolume {id} of the filesystem of '{onFileSystem}'";
                    throw new FileOperationException(
                        FileErrorKind.SubvolumeReplaced,
                        0,
                        "BTRFS_IOC_TREE_SEARCH",
                        label,
                        now is null
                            ? $"Cannot measure {label}: that filesystem has no such subvolume now, so it is not the subvolume {expected} asked for by its Uuid (-Uuid, or the piped object's; another filesystem mounted there, or deleted). List the subvolumes again."
                            : $"Cannot measure {label}: it is now the subvolume {now.Uuid}, not the subvolume {expected} asked for by its Uuid (-Uuid, or the piped object's; another filesystem mounted there, or its id given to a new one). List the subvolumes again.");
                }

                kept = Take(file, (null, $"subvolume {id} of the filesystem of {onFileSystem}", id, now?.Uuid ?? Guid.Empty));
            }
            finally
            {
                if (!kept)
                {
                    file.Dispose();
                }
            }
        }

        /// <summary>
        /// Subvolume <paramref name="id"/>'s root item (its UUID for the result); null when there is none. Where the
        /// root tree cannot be read, a failure only when <paramref name="mustRead"/> (an object's UUID to check):
        /// otherwise the measurement says why.
        /// </summary>
        private static BtrfsRootRecord? RootItemOrNone(OpenFile file, string onFileSystem, ulong id, bool mustRead)
        {
            try
            {
                return BtrfsSubvolumes.RootItem(file.Handle, onFileSystem, id);
            }
            catch (FileOperationException) when (!mustRead)
            {
                return null;
            }
        }

        /// <summary>Adds a member to its filesystem's list; true when <paramref name="file"/> was kept as that filesystem's handle.</summary>
        private bool Take(OpenFile file, (string? Path, string Label, ulong Id, Guid Uuid) member)
        {
            Guid fsid = BtrfsSearch.FileSystemId(file) ?? Guid.Empty;
            int at = fileSystems.FindIndex(f => f.FileSystem == fsid);
            if (at < 0)
            {
                fileSystems.Add((fsid, file, new List<(string?, string, ulong, Guid)> { member }));
                return true;
            }

            // One subvolume named again (by another path to it: a link on the way, a bind mount) is measured once.
            if (!fileSystems[at].Members.Exists(m => m.Id == member.Id))
            {
                fileSystems[at].Members.Add(member);
            }

            return false;
        }

        /// <summary>How many filesystems the subvolumes taken are on.</summary>
        internal int FileSystems => fileSystems.Count;

        /// <summary>
        /// Measures filesystem <paramref name="index"/> and returns its subvolumes' figures (or, with
        /// <paramref name="together"/>, one object for its subvolumes as a set). <paramref name="progress"/>
        /// is told the blocks read and an upper bound for the blocks there are. Throws, naming the
        /// filesystem's first subvolume, when it cannot be measured.
        /// </summary>
        internal List<BtrfsSubvolumeUsage> Measure(int index, bool together, CancellationToken cancel, out List<(FileOperationException Error, object Input)> gone, Action<long, long>? progress = null)
        {
            (Guid _, OpenFile handle, List<(string? Path, string Label, ulong Id, Guid Uuid)> all) = fileSystems[index];
            long estimate = (long)(BtrfsSearch.MetadataUsedBytes(handle) / Math.Max(1u, BtrfsSearch.FileSystemInfo(handle)?.NodeSize ?? 16384));
            SubvolumeSpace space = SubvolumeSpaceMeter.Measure(handle.Handle, handle.Path, cancel, p => progress?.Invoke(p.BlocksRead, estimate));

            // A subvolume deleted since it was taken is not in the commit measured: an error, not zeros.
            // Each error targets its input: the path given, or the id (as -Id's other errors do).
            gone = all.Where(m => !space.Roots.Contains(m.Id))
                .Select(m => (new FileOperationException(FileErrorKind.NotASubvolume, Errno.ENOENT, "read", m.Path ?? m.Label, m.Path is null ? $"Cannot measure {m.Label}: the filesystem has no subvolume {m.Id} (never made, or deleted). Get-BtrfsSubvolume -All lists the ones it has." : $"Cannot measure '{m.Path}': subvolume {m.Id} was deleted before the filesystem was read."), m.Path is string given ? (object)given : m.Id))
                .ToList();
            List<(string? Path, string Label, ulong Id, Guid Uuid)> members = all.Where(m => space.Roots.Contains(m.Id)).ToList();
            if (members.Count == 0)
            {
                return new List<BtrfsSubvolumeUsage>();
            }

            // One taken by id is named by its path where a mount reaches it, as Get-BtrfsSubvolume names it.
            if (members.Any(m => m.Path is null))
            {
                using var map = new SubvolumeMap(handle, MountTable.Read());
                members = members.ConvertAll(m => m.Path is null && ReachedPath(map, m.Id) is string reached ? (reached, reached, m.Id, m.Uuid) : m);
            }

            if (together)
            {
                List<ulong> ids = members.Select(m => m.Id).Distinct().OrderBy(i => i).ToList();
                return new List<BtrfsSubvolumeUsage> { Usage(space, ids, ids.Count == 1 ? members[0].Path : null, ids.Count == 1 ? members[0].Label : SubvolumeSpaceMeter.Label(ids), ids.Count == 1 ? members[0].Uuid : Guid.Empty) };
            }

            return members.ConvertAll(m => Usage(space, new[] { m.Id }, m.Path, m.Label, m.Uuid));
        }

        /// <summary>The subvolume's root directory under a mount that reaches it; null when none does (or it cannot be looked up).</summary>
        private static string? ReachedPath(SubvolumeMap map, ulong id)
        {
            try
            {
                return map.DirectoryOf(id)?.Path;
            }
            catch (FileOperationException)
            {
                return null;
            }
        }

        /// <summary>A path on filesystem <paramref name="index"/> (its first subvolume's), for messages.</summary>
        internal string PathOn(int index) => fileSystems[index].Members[0].Path ?? fileSystems[index].Handle.Path;

        /// <summary>The input that brought filesystem <paramref name="index"/> in (its first subvolume's path as given, or its id): what an error of the whole filesystem targets.</summary>
        internal object InputOn(int index) => fileSystems[index].Members[0].Path is string path ? path : fileSystems[index].Members[0].Id;

        /// <summary>Every input on filesystem <paramref name="index"/> (path as given, or id), in the order given.</summary>
        internal IEnumerable<object> InputsOn(int index) => fileSystems[index].Members.Select(m => m.Path is string path ? (object)path : m.Id);

        public void Dispose()
        {
            foreach (var f in fileSystems)
            {
                f.Handle.Dispose();
            }

            fileSystems.Clear();
        }

        private static BtrfsSubvolumeUsage Usage(SubvolumeSpace space, IReadOnlyList<ulong> ids, string? path, string label, Guid uuid)
        {
            (ulong rfer, ulong excl, ulong rferData, ulong exclData) = space.Of(ids.ToArray());
            return new BtrfsSubvolumeUsage
            {
                Id = ids.Count == 1 ? ids[0] : 0,
                Uuid = uuid,
                Path = path,
                Subvolume = label,
                Count = ids.Count,
                Ids = ids.ToArray(),
                ReferencedBytes = rfer,
                ExclusiveBytes = excl,
                ReferencedDataBytes = rferData,
                ExclusiveDataBytes = exclData,
                Generation = space.Generation,
            };
        }
    }
}

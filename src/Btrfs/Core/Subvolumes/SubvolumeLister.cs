namespace Btrfs.Core
{
    using System;
    using System.Collections.Generic;
    using System.Globalization;
    using System.Linq;
    using Btrfs.Interop;
    using Btrfs.Kernel;

    /// <summary>What Get-BtrfsSubvolume lists for a path.</summary>
    public enum SubvolumeScope
    {
        /// <summary>The subvolume holding the path.</summary>
        Self,

        /// <summary>The subvolume whose root directory the path is, and every subvolume below the path (reached through it); never the subvolume holding a path that is not a subvolume's root.</summary>
        Below,

        /// <summary>Every subvolume of the filesystem (root only), as `btrfs subvolume list`.</summary>
        All,
    }

    /// <summary>
    /// Get-BtrfsSubvolume's Core. Without privilege: GET_SUBVOL_INFO on the path's subvolume, and
    /// below a directory GET_SUBVOL_ROOTREF + INO_LOOKUP_USER (which answer only for subvolumes under
    /// that directory), each child opened component by component without following links and checked
    /// to be the subvolume named. As root it adds what only the root tree tells: the path from the
    /// top level of every subvolume, the default subvolume, every subvolume of the filesystem (<see cref="SubvolumeScope.All"/>).
    /// </summary>
    internal sealed class SubvolumeLister : IDisposable
    {
        private readonly OpenFile anchor;
        private readonly MountTable mounts;
        private readonly List<MountEntry> fileSystemMounts = new();
        private readonly Dictionary<Guid, string?> pathsByUuid = new();
        private SubvolumeMap? map;
        private List<BtrfsRootRecord>? all;
        private bool privileged = true;
        private ulong? defaultId;

        private SubvolumeLister(OpenFile anchor)
        {
            this.anchor = anchor;
            mounts = MountTable.Read();
            if (mounts.For(anchor) is MountEntry own)
            {
                foreach (MountEntry m in mounts.Entries)
                {
                    if (m.Major == own.Major && m.Minor == own.Minor && m.FileSystemType == "btrfs")
                    {
                        fileSystemMounts.Add(m);
                    }
                }
            }
        }

        /// <summary>Lists <paramref name="scope"/> for <paramref name="path"/> (symbolic links followed, as ls does). Throws <see cref="FileOperationException"/>.</summary>
        internal static List<BtrfsSubvolumeInfo> List(string path, SubvolumeScope scope) => List(path, scope, out _);

        /// <summary>As <see cref="List(string, SubvolumeScope)"/>, with the ids of the subvolumes below that could not be reached.</summary>
        internal static List<BtrfsSubvolumeInfo> List(string path, SubvolumeScope scope, out List<ulong> unreached) => List(path, scope, out unreached, out _);

        /// <summary>As <see cref="List(string, SubvolumeScope, out List{ulong})"/>; <paramref name="kinds"/>: those of them that could not be reached for a reason of their own (a name not UTF-8, a path too long for the kernel's lookup).</summary>
        internal static List<BtrfsSubvolumeInfo> List(string path, SubvolumeScope scope, out List<ulong> unreached, out UnreachedKinds kinds)
        {
            using OpenFile file = OpenFile.Open(path, OpenOptions.AllowDirectory);
            return List(file, scope, out unreached, out kinds);
        }

        /// <summary>
        /// As <see cref="List(string, SubvolumeScope)"/> for a file or directory already open: the subvolume and
        /// everything below come from that descriptor, never from its path again (only the Path properties are
        /// resolved for display).
        /// </summary>
        internal static List<BtrfsSubvolumeInfo> List(OpenFile file, SubvolumeScope scope) => List(file, scope, out _);

        /// <summary>As <see cref="List(OpenFile, SubvolumeScope)"/>, with the ids of the subvolumes below that could not be reached.</summary>
        internal static List<BtrfsSubvolumeInfo> List(OpenFile file, SubvolumeScope scope, out List<ulong> unreached) => List(file, scope, out unreached, out _);

        /// <summary>
        /// A new snapshot of <paramref name="source"/> (open, a subvolume's root), as <see cref="List(OpenFile, SubvolumeScope)"/>
        /// lists it alone, with its SourcePath the source's path: known here, where a user other than root cannot look
        /// the source up by its UUID (before, New-BtrfsSnapshot gave such a user an empty SourcePath; a hostile review).
        /// </summary>
        internal static BtrfsSubvolumeInfo SnapshotOf(OpenFile file, OpenFile source)
        {
            BtrfsOnly.Require(file, "list the subvolumes of", because: "only btrfs has subvolumes");
            using var lister = new SubvolumeLister(file);
            try
            {
                lister.pathsByUuid[BtrfsSubvolumes.Info(source.Handle, source.Path).Uuid] = ShownPathOf(source);
            }
            catch (FileOperationException)
            {
                // looked up by its UUID as for any listing
            }

            return lister.Run(SubvolumeScope.Self)[0];
        }

        /// <summary>As <see cref="List(OpenFile, SubvolumeScope, out List{ulong})"/>; <paramref name="kinds"/>: those of them that could not be reached for a reason of their own.</summary>
        internal static List<BtrfsSubvolumeInfo> List(OpenFile file, SubvolumeScope scope, out List<ulong> unreached, out UnreachedKinds kinds)
        {
            BtrfsOnly.Require(file, "list the subvolumes of", because: "only btrfs has subvolumes");
            using var lister = new SubvolumeLister(file);
            List<BtrfsSubvolumeInfo> found = lister.Run(scope);
            unreached = lister.Unreached;
            kinds = new UnreachedKinds(lister.NotUtf8, lister.TooLong);
            return found;
        }

        /// <summary>
        /// Why the subvolumes <paramref name="unreached"/> below '<paramref name="path"/>' were not listed, for a message:
        /// those in <paramref name="kinds"/>' NotUtf8 have a name no PowerShell path can hold, those in its TooLong a path
        /// longer than the kernel's lookup returns; the others a directory on the way
        /// this user cannot both read and search, or they were renamed, deleted or mounted over meanwhile.
        /// </summary>
        internal static string WhyUnreached(IReadOnlyCollection<ulong> unreached, UnreachedKinds kinds, string path, bool privileged = false)
        {
            var reasons = new List<string>();
            IReadOnlyCollection<ulong> notUtf8 = kinds.NotUtf8, tooLong = kinds.TooLong;
            if (notUtf8.Count > 0)
            {
                reasons.Add($"{notUtf8.Count} (id {string.Join(", ", notUtf8)}) {(notUtf8.Count == 1 ? "has" : "have")} a name, or a directory on the way, that is not valid UTF-8, which no PowerShell path can hold (rename {(notUtf8.Count == 1 ? "it" : "them")} to UTF-8, which deleting {(notUtf8.Count == 1 ? "it" : "them")} needs; Measure-BtrfsSubvolume takes {(notUtf8.Count == 1 ? "it" : "them")} as {(notUtf8.Count == 1 ? "it is" : "they are")} by -Id with -FileSystemPath '{path}')");
            }

            if (tooLong.Count > 0)
            {
                // Before: said to be under a directory this user cannot read, or renamed meanwhile (a hostile test).
                reasons.Add(string.Create(CultureInfo.InvariantCulture, $"{tooLong.Count} (id {string.Join(", ", tooLong)}) {(tooLong.Count == 1 ? "is" : "are")} below directories whose path inside the subvolume holding {(tooLong.Count == 1 ? "it" : "them")} is longer than the {BtrfsSubvolumes.LookupPathMax:N0} bytes the kernel's lookup returns (move {(tooLong.Count == 1 ? "it" : "them")}, mv, to a shorter path)"));
            }

            IEnumerable<ulong> others = unreached.Where(id => !notUtf8.Contains(id) && !tooLong.Contains(id));
            int count = others.Count();
            if (count > 0)
            {
                reasons.Add($"{count} (id {string.Join(", ", others)}) could not be reached: {(privileged ? string.Empty : "a directory on the way is not both readable and searchable by this user (the kernel's lookup for users without privilege needs both), or ")}{(count == 1 ? "it was" : "they were")} renamed, deleted or mounted over meanwhile");
            }

            return string.Join("; ", reasons);
        }

        /// <inheritdoc/>
        public void Dispose() => map?.Dispose();

        private List<BtrfsSubvolumeInfo> Run(SubvolumeScope scope)
        {
            var found = new List<(BtrfsRootRecord Record, string? Path, (uint, uint)? Device)>();
            if (scope == SubvolumeScope.All)
            {
                foreach (BtrfsRootRecord r in AllRoots() ?? throw NeedsRoot())
                {
                    if (r.Refs != 0 && r.ParentId != 0)
                    {
                        found.Add((r, DirectoryPathOf(r.Id), null));
                    }
                }
            }
            else
            {
                // Below a path that is not a subvolume's root, the subvolume holding it is above the path, not
                // below: it is not listed, so a pipeline of what -Recurse found (into Remove-BtrfsSubvolume, say)
                // never reaches the live subvolume a snapshots directory sits in.
                bool atRoot = anchor.Status.Inode == BtrfsInspect.SubvolumeRootInode;
                BtrfsRootRecord self = BtrfsSubvolumes.Info(anchor.Handle, anchor.Path);
                if (scope == SubvolumeScope.Self || atRoot)
                {
                    found.Add((self, RootDirectoryOf(anchor), (anchor.Status.DevMajor, anchor.Status.DevMinor)));
                }

                if (scope == SubvolumeScope.Below && anchor.IsDirectory)
                {
                    Below(anchor.Handle, ShownPathOf(anchor), anchor.Status.MountId, found, atRoot);
                }
            }

            foreach ((BtrfsRootRecord r, string? p, _) in found)
            {
                pathsByUuid[r.Uuid] = p;
            }

            var result = new List<BtrfsSubvolumeInfo>(found.Count);
            foreach ((BtrfsRootRecord r, string? p, (uint, uint)? device) in found)
            {
                result.Add(Describe(r, p, device));
            }

            return result;
        }

        /// <summary>
        /// The subvolumes under the open directory <paramref name="dir"/>, depth first, each under its parent.
        /// A child that cannot be reached (a directory on the way not readable and searchable, renamed or deleted meanwhile,
        /// another mount on top of it) is left out and counted in <see cref="Unreached"/>. Each listed one
        /// carries the device number of the descriptor it was opened through.
        /// </summary>
        private void Below(SafeFileDescriptor dir, string dirPath, ulong mountId, List<(BtrfsRootRecord, string?, (uint, uint)?)> found, bool subvolumeRoot)
        {
            foreach ((ulong tree, ulong dirId) in BtrfsSubvolumes.Children(dir, dirPath))
            {
                // The children are those of the whole subvolume holding the directory; the lookup answers only for
                // those under it: EACCES for one elsewhere in the subvolume (not below a plain directory given, so
                // not counted), or where a directory on the way is not readable and searchable (below a subvolume's root, the
                // only reason: the subvolume is there, this user just cannot reach it).
                int errno = BtrfsSubvolumes.TryLookupChild(dir, tree, dirId, out string name, out string between);
                if (errno != 0)
                {
                    // ENAMETOOLONG as EACCES: below a plain directory given, the lookup says it for a child anywhere in the
                    // subvolume whose path is too long, below the directory or not (a review).
                    if (errno is not (Errno.EACCES or Errno.ENAMETOOLONG) || subvolumeRoot)
                    {
                        Unreached.Add(tree);
                    }

                    if (errno == Errno.EILSEQ)
                    {
                        NotUtf8.Add(tree);
                    }

                    if (errno == Errno.ENAMETOOLONG && subvolumeRoot)
                    {
                        TooLong.Add(tree);
                    }

                    continue;
                }

                string relative = between + name;
                using OpenFile? child = OpenBelow(dir, dirPath, relative);
                BtrfsRootRecord? record = null;
                if (child is not null && child.Status.Inode == BtrfsInspect.SubvolumeRootInode && (mountId == 0 || child.Status.MountId == mountId))
                {
                    try
                    {
                        record = BtrfsSubvolumes.Info(child.Handle, child.Path);
                    }
                    catch (FileOperationException)
                    {
                        record = null; // deleted meanwhile
                    }
                }

                if (child is null || record is null || record.Id != tree)
                {
                    Unreached.Add(tree); // the name leads elsewhere now (renamed, deleted, or a mount on top)
                    continue;
                }

                found.Add((record, child.Path, (child.Status.DevMajor, child.Status.DevMinor)));
                Below(child.Handle, child.Path, mountId, found, subvolumeRoot: true);
            }
        }

        /// <summary>Children the kernel named below the directory that could not be reached and opened as that subvolume (under a directory the caller cannot search, renamed, deleted or mounted over).</summary>
        internal List<ulong> Unreached { get; } = new();

        /// <summary>Those of <see cref="Unreached"/> whose name, or a directory's on the way, is not valid UTF-8 (no path here can name them).</summary>
        internal List<ulong> NotUtf8 { get; } = new();

        /// <summary>Those of <see cref="Unreached"/> below directories whose path inside their subvolume is longer than the kernel's lookup returns (ENAMETOOLONG).</summary>
        internal List<ulong> TooLong { get; } = new();

        /// <summary>Ids whose path from the top level the kernel's lookup could not return (too long): <see cref="BtrfsSubvolumeInfo.PathTooLong"/>.</summary>
        private readonly HashSet<ulong> topLevelTooLong = new();

        /// <summary>Opens the directory <paramref name="relative"/> below <paramref name="dir"/> one component at a time, never following a link nor entering another mount; null when that fails.</summary>
        internal static OpenFile? OpenBelow(SafeFileDescriptor dir, string dirPath, string relative)
        {
            OpenFile? current = null;
            string path = dirPath.TrimEnd('/');
            ulong mountId = FileStatus.Of(dir)?.MountId ?? 0;
            try
            {
                foreach (string part in relative.Split('/', StringSplitOptions.RemoveEmptyEntries))
                {
                    path = path + "/" + part;

                    // A mount on the way is recognised from the kernel's cache before it is opened (one that no
                    // longer answers would hold the open forever); subvolumes below share the mount.
                    if (mountId != 0 && FileStatus.OfAtCached(current?.Handle ?? dir, part) is { MountId: not 0 } seen && seen.MountId != mountId)
                    {
                        current?.Dispose();
                        return null;
                    }

                    OpenFile next = OpenFile.Open(new FileLocation(current?.Handle ?? dir, part, path), OpenOptions.AllowDirectory | OpenOptions.NoFollow);
                    current?.Dispose();
                    current = next;
                    if (!current.IsDirectory)
                    {
                        current.Dispose();
                        return null;
                    }
                }

                return current;
            }
            catch (FileOperationException)
            {
                current?.Dispose();
                return null;
            }
        }

        /// <summary>The absolute path of the root directory of the subvolume holding <paramref name="file"/>: up from it while the device stays, to the directory with inode 256; null when a mount boundary comes first.</summary>
        private static string? RootDirectoryOf(OpenFile file)
        {
            string? start = ShownPathOf(file);
            if (start is null)
            {
                return null;
            }

            string? current = file.IsDirectory ? start : System.IO.Path.GetDirectoryName(start);
            while (current is not null)
            {
                if (FileStatus.OfPath(current, followLinks: false) is not FileStatus st || st.DevMajor != file.Status.DevMajor || st.DevMinor != file.Status.DevMinor)
                {
                    return null;
                }

                if (st.Inode == BtrfsInspect.SubvolumeRootInode)
                {
                    return current;
                }

                current = System.IO.Path.GetDirectoryName(current);
            }

            return null;
        }

        private BtrfsSubvolumeInfo Describe(BtrfsRootRecord r, string? path, (uint, uint)? device)
        {
            bool top = r.Id == BtrfsInspect.TopLevelId;
            string? sourcePath = null;
            if (r.ParentUuid != Guid.Empty)
            {
                sourcePath = pathsByUuid.TryGetValue(r.ParentUuid, out string? known) ? known : SourceByUuid(r.ParentUuid);
            }

            return new BtrfsSubvolumeInfo
            {
                Id = r.Id,
                Name = top ? "<FS_TREE>" : r.Name,
                Path = path,
                TopLevelPath = TopLevelPathOf(r.Id, path),
                PathTooLong = topLevelTooLong.Contains(r.Id),
                ParentId = top ? 0 : r.ParentId,
                Uuid = r.Uuid,
                ParentUuid = r.ParentUuid == Guid.Empty ? null : r.ParentUuid,
                SourcePath = sourcePath,
                ReceivedUuid = r.ReceivedUuid == Guid.Empty ? null : r.ReceivedUuid,
                Generation = r.Generation,
                CreationGeneration = r.OTransId,
                CreationTimeUtc = r.CreationTime,
                IsReadOnly = r.IsReadOnly,
                IsDefault = DefaultId() is ulong d ? d == r.Id : null,
                MountPoints = MountPointsOf(r.Id),
                FileSystemPath = anchor.Path,
                Device = device,
            };
        }

        /// <summary>From the root tree (root), else from the mount that shows <paramref name="path"/>: its root within the filesystem plus the rest of the path.</summary>
        private string? TopLevelPathOf(ulong id, string? path)
        {
            if (AllRoots() is not null)
            {
                try
                {
                    return Map().PathOf(id);
                }
                catch (FileOperationException ex)
                {
                    if (ex.Errno == Errno.ENAMETOOLONG)
                    {
                        topLevelTooLong.Add(id);
                    }

                    // fall back on the mounts
                }
            }

            if (path is null)
            {
                return null;
            }

            MountEntry? best = MountTable.Deepest(fileSystemMounts, path);
            if (best is null)
            {
                return null;
            }

            string rest = path.Length > best.MountPoint.TrimEnd('/').Length ? path[best.MountPoint.TrimEnd('/').Length..] : string.Empty;
            string joined = best.Root.TrimEnd('/') + rest;
            return joined.Length == 0 ? "/" : joined;
        }

        /// <summary>Every mount point whose root is subvolume <paramref name="id"/> (subvol=, subvolid=, or the default), in mount order.</summary>
        private string[] MountPointsOf(ulong id)
        {
            string wanted = id.ToString(CultureInfo.InvariantCulture);
            var found = new List<string>();
            foreach (MountEntry m in fileSystemMounts)
            {
                if (m.Option("subvolid") == wanted && !found.Contains(m.MountPoint))
                {
                    found.Add(m.MountPoint);
                }
            }

            return found.ToArray();
        }

        private string? SourceByUuid(Guid uuid)
        {
            if (AllRoots() is not List<BtrfsRootRecord> roots)
            {
                return null;
            }

            foreach (BtrfsRootRecord r in roots)
            {
                if (r.Uuid == uuid && r.Refs != 0)
                {
                    return DirectoryPathOf(r.Id);
                }
            }

            // The top level is no subvolume of the list (its root item comes before the first free id), yet a snapshot
            // of it names its UUID. (Before: such a snapshot's SourcePath was empty. Found by a hostile review.)
            try
            {
                return BtrfsSubvolumes.RootItem(anchor.Handle, anchor.Path, BtrfsInspect.TopLevelId) is { } top && top.Uuid == uuid ? DirectoryPathOf(top.Id) : null;
            }
            catch (FileOperationException)
            {
                return null;
            }
        }

        /// <summary>
        /// The path shown for the open file and what is below it: the kernel's path of the descriptor (through the
        /// mount it was opened on, links resolved) where it still leads to that inode, else the given path with its
        /// links resolved, so the subvolume given and those found below it name it the same way. For display only:
        /// nothing is opened by it.
        /// </summary>
        private static string ShownPathOf(OpenFile file) =>
            Names.NamedPathOfDescriptor(file.Handle) is string p && FileStatus.OfPath(p, followLinks: false) is FileStatus there && there.SameInode(file.Status)
                ? p
                : Files.RealPath(file.Path) ?? file.Path;

        /// <summary>The subvolume's root directory under a mount that reaches it; null when none does or it went away meanwhile.</summary>
        private string? DirectoryPathOf(ulong id)
        {
            try
            {
                return Map().DirectoryOf(id)?.Path;
            }
            catch (FileOperationException)
            {
                return null;
            }
        }

        /// <summary>Every subvolume from the root tree; null without the privilege to read it.</summary>
        private List<BtrfsRootRecord>? AllRoots()
        {
            if (all is null && privileged)
            {
                try
                {
                    all = BtrfsSubvolumes.All(anchor.Handle, anchor.Path);
                }
                catch (FileOperationException ex) when (ex.Errno is Errno.EPERM or Errno.EACCES)
                {
                    privileged = false;
                }
            }

            return all;
        }

        private ulong? DefaultId()
        {
            if (defaultId is null && AllRoots() is not null)
            {
                defaultId = BtrfsSubvolumes.DefaultId(anchor.Handle, anchor.Path);
            }

            return defaultId;
        }

        private SubvolumeMap Map() => map ??= new SubvolumeMap(anchor, mounts);

        private FileOperationException NeedsRoot() => new(
            FileErrorKind.AccessDenied,
            Errno.EPERM,
            "BTRFS_IOC_TREE_SEARCH_V2",
            anchor.Path,
            $"Cannot list every subvolume of the filesystem of '{anchor.Path}': that reads the root tree, which needs root (CAP_SYS_ADMIN). Run it as root, or list the subvolumes under a directory with -Recurse, which needs no privilege.");
    }

    /// <summary>Subvolumes below that could not be reached for a reason of their own: a name (or a directory's on the way) not UTF-8; a path inside the subvolume above longer than the kernel's lookup returns.</summary>
    internal sealed record UnreachedKinds(IReadOnlyCollection<ulong> NotUtf8, IReadOnlyCollection<ulong> TooLong);
}

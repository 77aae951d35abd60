namespace Btrfs.Core
{
    using System;
    using System.Collections.Generic;
    using System.Globalization;
    using System.Threading;
    using Btrfs.Interop;
    using Btrfs.Kernel;

    /// <summary>
    /// Remove-BtrfsSubvolume's Core. <see cref="Plan"/> opens the subvolume through its parent directory
    /// without following a link, proves it is a subvolume's root, and refuses what must not be deleted:
    /// the default subvolume, one mounted (as a mount's root, or with a mount inside), one holding an
    /// active swapfile, one with nested subvolumes unless they go too. <see cref="Run"/> deletes the
    /// nested ones first (deepest first), then the subvolume, each by id when root (SNAP_DESTROY_V2
    /// SPEC_BY_ID: the id checked, not a name looked up again), else by name in its parent, whose entry
    /// is checked to still be that subvolume just before.
    /// </summary>
    internal sealed class SubvolumeRemover : IDisposable
    {
        private readonly OpenFile parent;
        private readonly OpenFile root;
        private readonly string name;

        private SubvolumeRemover(OpenFile parent, OpenFile root, string name, BtrfsSubvolumeInfo subvolume, List<BtrfsSubvolumeInfo> nested)
        {
            this.parent = parent;
            this.root = root;
            this.name = name;
            Subvolume = subvolume;
            Nested = nested;
        }

        /// <summary>The subvolume to delete.</summary>
        internal BtrfsSubvolumeInfo Subvolume { get; }

        /// <summary>The subvolumes below it (each after its parent), deleted first with recurse.</summary>
        internal IReadOnlyList<BtrfsSubvolumeInfo> Nested { get; }

        /// <summary>Checks that <paramref name="path"/> may be deleted; throws the refusal otherwise. Nothing is changed.</summary>
        internal static SubvolumeRemover Plan(string path, bool recurse)
        {
            if (path.Contains('\0', StringComparison.Ordinal))
            {
                throw NotASubvolume(path.Replace("\0", "\\0", StringComparison.Ordinal), "a path cannot contain a NUL character");
            }

            string full = System.IO.Path.GetFullPath(path).TrimEnd('/');
            string name = System.IO.Path.GetFileName(full);
            string parentPath = System.IO.Path.GetDirectoryName(full) ?? "/";
            if (name.Length == 0 || name is "." or "..")
            {
                throw NotASubvolume(path, "the top level of a filesystem is not a subvolume that can be deleted");
            }

            OpenFile parentDir = OpenFile.Open(parentPath, OpenOptions.AllowDirectory);
            OpenFile? subvolumeRoot = null;
            try
            {
                subvolumeRoot = OpenFile.Open(new FileLocation(parentDir.Handle, name, full), OpenOptions.AllowDirectory | OpenOptions.NoFollow);
                BtrfsOnly.Require(subvolumeRoot, "delete the subvolume", "Subvolumes are a btrfs feature.");
                if (!subvolumeRoot.IsDirectory || subvolumeRoot.Status.Inode != BtrfsInspect.SubvolumeRootInode)
                {
                    throw NotASubvolume(full, $"it is a {(subvolumeRoot.IsDirectory ? "directory" : "file")} inside a subvolume, not a subvolume's root");
                }

                // Everything from the descriptor just checked: its id, and the subvolumes below it.
                List<BtrfsSubvolumeInfo> listed = SubvolumeLister.List(subvolumeRoot, SubvolumeScope.Below, out List<ulong> unreached);
                BtrfsSubvolumeInfo self = listed[0];
                if (self.Id == BtrfsInspect.TopLevelId)
                {
                    throw NotASubvolume(full, "it is the top level of the filesystem");
                }

                // The subvolume is deleted by its id through the parent's filesystem: the name must not be a
                // mount point (of another btrfs, whose subvolume of the same id would be what was checked, or
                // of a subvolume mounted there), in this mount namespace or the one the path goes through.
                if (subvolumeRoot.Status.MountId != parentDir.Status.MountId || BtrfsSearch.FileSystemId(subvolumeRoot) != BtrfsSearch.FileSystemId(parentDir))
                {
                    throw InUse(full, "it is a mount point (something is mounted on that name). Unmount it first");
                }

                string canonical = self.Path ?? full;
                foreach (BtrfsSubvolumeInfo s in listed)
                {
                    string which = s.Id == self.Id ? "it is" : $"the subvolume '{s.Path}' inside it is";
                    if (s.IsDefault == true)
                    {
                        throw InUse(full, $"{which} the filesystem's default subvolume (mounted when no subvol= is given). Make another one the default first (btrfs subvolume set-default)");
                    }

                    if (s.MountPoint is string mountPoint)
                    {
                        throw InUse(full, $"{which} mounted at '{mountPoint}'. Unmount it first");
                    }
                }

                if (MountedInside(canonical) is string inside)
                {
                    throw InUse(full, $"'{inside}' inside it is a mount point. Unmount it first");
                }

                SwapTable swaps = SwapTable.Read();
                if (swaps.AnyOnDevice(subvolumeRoot.Status.DevMajor, subvolumeRoot.Status.DevMinor) || swaps.AnyUnder(canonical))
                {
                    throw InUse(full, "an active swapfile is inside it. Switch it off first (swapoff)");
                }

                List<BtrfsSubvolumeInfo> nested = listed.GetRange(1, listed.Count - 1);
                int hidden = unreached.Count + Unlisted(parentDir, self.Id, listed, out bool privileged);
                if ((nested.Count > 0 || hidden > 0) && !recurse)
                {
                    throw new FileOperationException(
                        FileErrorKind.SubvolumeHasNested,
                        Errno.ENOTEMPTY,
                        "BTRFS_IOC_GET_SUBVOL_ROOTREF",
                        full,
                        $"Cannot delete the subvolume '{full}': it holds {nested.Count + hidden} nested subvolume(s) ({string.Join(", ", nested.ConvertAll(n => n.Path ?? n.Name))}{(hidden > 0 ? $"{(nested.Count > 0 ? ", " : string.Empty)}{hidden} not reachable by path" : string.Empty)}). Add -Recurse to delete them too, or move them out first. Nothing was deleted.");
                }

                if (hidden > 0)
                {
                    throw new FileOperationException(
                        FileErrorKind.SubvolumeHasNested,
                        Errno.ENOTEMPTY,
                        "BTRFS_IOC_GET_SUBVOL_ROOTREF",
                        full,
                        $"Cannot delete the subvolume '{full}' with -Recurse: {hidden} of the subvolumes inside it cannot be reached through its directories (not searchable by this user, or moved meanwhile), so they could not be checked. Nothing was deleted.");
                }

                return new SubvolumeRemover(parentDir, subvolumeRoot, name, self, nested) { Privileged = privileged };
            }
            catch
            {
                subvolumeRoot?.Dispose();
                parentDir.Dispose();
                throw;
            }
        }

        /// <summary>Whether the root tree could be read (root): refusals of the kernel are then about use, not permission.</summary>
        private bool Privileged { get; init; }

        /// <summary>
        /// As root: how many subvolumes the root tree places below <paramref name="id"/> (by their parents) that
        /// the listing through the directories did not find; 0 where the root tree cannot be read.
        /// </summary>
        private static int Unlisted(OpenFile anyOnFileSystem, ulong id, List<BtrfsSubvolumeInfo> listed, out bool privileged)
        {
            List<BtrfsRootRecord> all;
            try
            {
                all = BtrfsSubvolumes.All(anyOnFileSystem.Handle, anyOnFileSystem.Path);
                privileged = true;
            }
            catch (FileOperationException ex) when (ex.Errno is Errno.EPERM or Errno.EACCES)
            {
                privileged = false;
                return 0;
            }

            var below = new HashSet<ulong> { id };
            bool grew = true;
            while (grew)
            {
                grew = false;
                foreach (BtrfsRootRecord r in all)
                {
                    if (r.Refs != 0 && below.Contains(r.ParentId) && below.Add(r.Id))
                    {
                        grew = true;
                    }
                }
            }

            var seen = new HashSet<ulong>(listed.ConvertAll(s => s.Id));
            below.ExceptWith(seen);
            return below.Count;
        }

        /// <summary>The filesystem the subvolume is on (its id), to measure each filesystem once.</summary>
        internal Guid FileSystem => BtrfsSearch.FileSystemId(root) ?? Guid.Empty;

        /// <summary>The ids deleted: the subvolume's and those of the nested ones going with it.</summary>
        internal List<ulong> Ids
        {
            get
            {
                var ids = new List<ulong> { Subvolume.Id };
                foreach (BtrfsSubvolumeInfo n in Nested)
                {
                    ids.Add(n.Id);
                }

                return ids;
            }
        }

        /// <summary>Measures the whole filesystem (<see cref="SubvolumeSpaceMeter"/>; root only; it commits first).</summary>
        internal SubvolumeSpace MeasureFileSystem(CancellationToken cancel) =>
            SubvolumeSpaceMeter.Measure(root.Handle, Subvolume.Path ?? root.Path, cancel);

        /// <summary>Deletes the nested subvolumes (deepest first) and the subvolume; with <paramref name="wait"/> waits until the cleaner has freed their space.</summary>
        internal void Run(bool wait, Action<BtrfsSubvolumeInfo>? deleted = null, CancellationToken cancel = default)
        {
            var order = new List<BtrfsSubvolumeInfo>(Nested);
            order.Reverse(); // children were listed after their parents
            var done = new List<BtrfsSubvolumeInfo>();
            foreach (BtrfsSubvolumeInfo n in order)
            {
                cancel.ThrowIfCancellationRequested();
                StillBelow(n, done);
                Delete(n.Id, n.Path ?? n.Name, byName: null, done);
                done.Add(n);
                deleted?.Invoke(n);
            }

            Delete(Subvolume.Id, Subvolume.Path ?? root.Path, byName: name, done);

            // An open directory of a deleted subvolume keeps it from the cleaner: close it before waiting.
            string rootPath = root.Path;
            root.Dispose();
            done.Add(Subvolume);
            deleted?.Invoke(Subvolume);
            if (wait)
            {
                foreach (BtrfsSubvolumeInfo s in done)
                {
                    WaitCleaned(s.Id, s.Id == Subvolume.Id ? rootPath : s.Path ?? s.Name, cancel);
                }
            }
        }

        /// <inheritdoc/>
        public void Dispose()
        {
            root.Dispose();
            parent.Dispose();
        }

        /// <summary>
        /// Just before a nested subvolume is deleted by id (which reaches it wherever it is): its chain of
        /// parents must still lead to the subvolume being deleted, or it was moved out meanwhile and is kept.
        /// Not root: the deletion by id is refused anyway.
        /// </summary>
        private void StillBelow(BtrfsSubvolumeInfo nested, List<BtrfsSubvolumeInfo> done)
        {
            if (!Privileged)
            {
                return;
            }

            ulong id = nested.Id;
            for (int depth = 0; depth < 4096; depth++)
            {
                if (BtrfsInspect.BackrefOf(parent, id) is not RootBackref up)
                {
                    break;
                }

                if (up.Parent == Subvolume.Id)
                {
                    return;
                }

                id = up.Parent;
            }

            throw new FileOperationException(
                FileErrorKind.SubvolumeHasNested,
                Errno.ENOTEMPTY,
                "BTRFS_IOC_TREE_SEARCH_V2",
                nested.Path ?? nested.Name,
                $"Cannot delete '{nested.Path ?? nested.Name}': it is no longer inside '{Subvolume.Path}' (moved since it was listed), so it was kept, and '{Subvolume.Path}' too.{Deleted(done)}");
        }

        private void Delete(ulong id, string path, string? byName, List<BtrfsSubvolumeInfo> done)
        {
            int errno = BtrfsSubvolumes.TryDeleteById(parent.Handle, id);
            if (errno is Errno.EPERM or Errno.EACCES or Errno.EOPNOTSUPP && byName is not null && !Privileged)
            {
                // Not root: by name in the parent, after checking the name still leads to that subvolume.
                if (FileStatus.OfAt(parent.Handle, byName) is not FileStatus now || !now.SameInode(root.Status))
                {
                    throw new FileOperationException(FileErrorKind.NotASubvolume, 0, "statx", path, $"Cannot delete the subvolume '{path}': its name now leads to something else. Nothing was deleted.");
                }

                errno = BtrfsSubvolumes.TryDelete(parent.Handle, byName);
            }

            if (errno == 0)
            {
                return;
            }

            string what = $"Cannot delete the subvolume '{path}'";
            string after = Deleted(done);
            throw errno switch
            {
                // As root, the kernel's EPERM is about use: the default subvolume, an active swapfile, a btrfs send reading it.
                Errno.EPERM when Privileged => InUse(path, $"the kernel refuses it ({Errno.Name(errno)}): it is the default subvolume, holds an active swapfile, or a btrfs send is reading it", after),
                Errno.EPERM or Errno.EACCES => new FileOperationException(FileErrorKind.AccessDenied, errno, "BTRFS_IOC_SNAP_DESTROY_V2", path, $"{what}: permission denied ({Errno.Name(errno)}). Deleting a subvolume needs root, or the user_subvol_rm_allowed mount option and write permission on it and its parent.{(after.Length > 0 ? after : " Nothing was deleted.")}"),
                Errno.EBUSY or Errno.ETXTBSY => InUse(path, $"the kernel says it is in use ({Errno.Name(errno)}: mounted, or an active swapfile)", after),
                Errno.ENOTEMPTY => new FileOperationException(FileErrorKind.SubvolumeHasNested, errno, "BTRFS_IOC_SNAP_DESTROY_V2", path, $"{what}: a nested subvolume appeared in it meanwhile. Run it again with -Recurse.{after}"),
                _ => FileOperationException.FromErrno(errno, "BTRFS_IOC_SNAP_DESTROY_V2", path, what, after.Length > 0 ? after.Trim() : null),
            };
        }

        /// <summary>What was deleted already when a later step fails ("" when nothing was).</summary>
        private static string Deleted(List<BtrfsSubvolumeInfo> done) =>
            done.Count == 0 ? string.Empty : $" Deleted before this: {string.Join(", ", done.ConvertAll(d => d.Path ?? d.Name))}.";

        /// <summary>
        /// Waits until the subvolume's root item is gone from the root tree: the cleaner has dropped its
        /// tree and freed its space. Each round commits with BTRFS_IOC_SYNC, which also wakes the
        /// transaction thread that starts the cleaner (syncfs does not: the subvolume then waits for the
        /// next periodic commit, 30 s, and so did the kernel's own SUBVOL_SYNC_WAIT here), so it is only
        /// the fallback where the root tree cannot be read.
        /// </summary>
        private void WaitCleaned(ulong id, string path, CancellationToken cancel)
        {
            int delay = 20;
            var sinceCommit = System.Diagnostics.Stopwatch.StartNew();
            _ = BtrfsSubvolumes.TryCommitAndClean(parent.Handle);
            while (true)
            {
                cancel.ThrowIfCancellationRequested();
                BtrfsRootRecord? left;
                try
                {
                    left = BtrfsSubvolumes.RootItem(parent.Handle, parent.Path, id);
                }
                catch (FileOperationException ex) when (ex.Errno is Errno.EPERM or Errno.EACCES)
                {
                    int errno = BtrfsSubvolumes.TryWaitCleaned(parent.Handle, id);
                    if (errno is 0 or Errno.ENOENT)
                    {
                        return; // cleaned (ENOENT: already gone)
                    }

                    throw FileOperationException.FromErrno(errno, "BTRFS_IOC_SUBVOL_SYNC_WAIT", path, "The subvolume was deleted, but waiting for its space to be freed failed for", errno == Errno.ENOTTY ? "This kernel has no SUBVOL_SYNC_WAIT; run `btrfs subvolume sync` as root instead." : null);
                }

                if (left is null)
                {
                    return;
                }

                Thread.Sleep(delay);
                delay = Math.Min(delay * 2, 500);

                // The cleaner works in its own transactions; another commit now and then (not every round:
                // a commit flushes the whole filesystem for everyone) gets a stalled one going again.
                if (sinceCommit.Elapsed > TimeSpan.FromSeconds(5))
                {
                    _ = BtrfsSubvolumes.TryCommitAndClean(parent.Handle);
                    sinceCommit.Restart();
                }
            }
        }

        /// <summary>A mount point at or below <paramref name="full"/> (besides the subvolume's own mounts, checked by id).</summary>
        private static string? MountedInside(string full)
        {
            foreach (MountEntry m in MountTable.Read().Entries)
            {
                if (m.MountPoint == full || m.MountPoint.StartsWith(full + "/", StringComparison.Ordinal))
                {
                    return m.MountPoint;
                }
            }

            return null;
        }

        private static FileOperationException NotASubvolume(string path, string why) => new(
            FileErrorKind.NotASubvolume,
            Errno.EINVAL,
            "statx",
            path,
            $"Cannot delete the subvolume '{path}': {why}. Nothing was deleted; use Get-BtrfsSubvolume to find subvolumes.");

        private static FileOperationException InUse(string path, string why, string after = "") => new(
            FileErrorKind.SubvolumeInUse,
            Errno.EBUSY,
            "SNAP_DESTROY",
            path,
            $"Cannot delete the subvolume '{path}': {why}.{(after.Length > 0 ? after : " Nothing was deleted.")}");

        internal static string Describe(BtrfsSubvolumeInfo s, int nested) =>
            nested == 0
                ? string.Format(CultureInfo.InvariantCulture, "Delete subvolume {0} (id {1})", s.Path ?? s.Name, s.Id)
                : string.Format(CultureInfo.InvariantCulture, "Delete subvolume {0} (id {1}) and the {2} nested subvolume(s) in it", s.Path ?? s.Name, s.Id, nested);
    }
}

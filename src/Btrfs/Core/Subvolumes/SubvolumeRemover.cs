namespace Btrfs.Core
{
    using System;
    using System.Collections.Generic;
    using System.Globalization;
    using System.Linq;
    using System.Threading;
    using Btrfs.Interop;
    using Btrfs.Kernel;

    /// <summary>
    /// Remove-BtrfsSubvolume's Core. <see cref="Plan"/> opens the subvolume through its parent directory
    /// without following a link, proves it is a subvolume's root, and refuses what must not be deleted:
    /// the default subvolume, one mounted (as a mount's root, or with a mount inside), one holding an
    /// active swapfile, one with nested subvolumes unless they go too. <see cref="Run"/> deletes the
    /// nested ones first (deepest first), then the subvolume. The kernel deletes what a name holds when
    /// its turn comes (SNAP_DESTROY_V2 by id too: it turns the id into a parent directory and a name
    /// first), so each is moved into a directory only this user may change, checked there by its id and
    /// UUID, and deleted there by name (<see cref="DeleteHeld"/>). Deleted where it is only where no mount
    /// in this namespace reaches it, or, read-only or without space to move it, where nobody but root and
    /// this user can rename names in its directory. Mounts, swapfiles and users are looked for again after
    /// any confirmation prompt.
    /// </summary>
    internal sealed class SubvolumeRemover : IDisposable
    {
        private readonly OpenFile parent;
        private readonly OpenFile? root; // null: by id, not reached through a mount
        private readonly string? name;

        private SubvolumeRemover(OpenFile parent, OpenFile? root, string? name, BtrfsSubvolumeInfo subvolume, List<BtrfsSubvolumeInfo> nested)
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
        internal static SubvolumeRemover Plan(string path, bool recurse, bool assumeNotInUse = false)
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

            OpenFile parentDir = OpenFile.Open(parentPath, OpenOptions.AllowDirectory | OpenOptions.TrustedLinksOnly);
            OpenFile? subvolumeRoot = null;
            try
            {
                subvolumeRoot = OpenFile.Open(new FileLocation(parentDir.Handle, name, full), OpenOptions.AllowDirectory | OpenOptions.NoFollow);
                BtrfsOnly.Require(subvolumeRoot, "delete the subvolume", because: "only btrfs has subvolumes");
                if (!subvolumeRoot.IsDirectory || subvolumeRoot.Status.Inode != BtrfsInspect.SubvolumeRootInode)
                {
                    throw NotASubvolume(full, $"it is a {(subvolumeRoot.IsDirectory ? "directory" : "file")} inside a subvolume, not a subvolume's root");
                }

                // Everything from the descriptor just checked: its id, and the subvolumes below it.
                List<BtrfsSubvolumeInfo> listed = SubvolumeLister.List(subvolumeRoot, SubvolumeScope.Below, out List<ulong> unreached, out UnreachedKinds kinds);
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

                // Mounts are looked at in the filesystem's own terms (a mount's root and where its parent shows it),
                // so a mount inside it reached through another view of the filesystem (subvol=, a bind of the top
                // level) is seen as well as one under this path.
                MountTable mounts = MountTable.Read();
                ThrowIfMounted(full, canonical, self.TopLevelPath, mounts, mounts.For(subvolumeRoot), assumeNotInUse, named: null);

                List<BtrfsSubvolumeInfo> nested = listed.GetRange(1, listed.Count - 1);

                // Every file in it and in the subvolumes below has that subvolume's own device number: each from the
                // descriptor the subvolume was listed through, never from its path again.
                var devices = new HashSet<(uint Major, uint Minor)>();
                foreach (BtrfsSubvolumeInfo s in listed)
                {
                    if (s.Device is (uint, uint) device)
                    {
                        devices.Add(device);
                    }
                }

                // Without root the kernel deletes a subvolume only on a filesystem mounted with user_subvol_rm_allowed:
                // said first, not after a proof of non-use this user could not complete (InUseUnknown) anyway.
                int hidden = unreached.Count + Unlisted(parentDir, self.Id, listed, unreached, out bool privileged);
                if (!privileged && mounts.For(subvolumeRoot) is MountEntry on && !on.HasOption("user_subvol_rm_allowed"))
                {
                    throw new FileOperationException(
                        FileErrorKind.AccessDenied,
                        Errno.EPERM,
                        "mountinfo",
                        full,
                        $"Cannot delete the subvolume '{full}': without root (CAP_SYS_ADMIN) the kernel deletes a subvolume only where its filesystem is mounted with user_subvol_rm_allowed, and '{on.MountPoint}' is not (an empty subvolume of this user's can be removed with rmdir). Run as root, or mount with -o user_subvol_rm_allowed. Nothing was deleted.");
                }

                if ((nested.Count > 0 || hidden > 0) && !recurse)
                {
                    throw new FileOperationException(
                        FileErrorKind.SubvolumeHasNested,
                        Errno.ENOTEMPTY,
                        "BTRFS_IOC_GET_SUBVOL_ROOTREF",
                        full,
                        $"Cannot delete the subvolume '{full}': it holds {nested.Count + hidden} nested subvolume(s) ({string.Join(", ", nested.ConvertAll(n => n.Path ?? n.Name))}{(hidden > 0 ? $"{(nested.Count > 0 ? ", " : string.Empty)}{hidden} not reachable by path" : string.Empty)}). If they should all go, add -Recurse to delete them too; otherwise move them out first. Nothing was deleted.");
                }

                if (hidden > 0)
                {
                    // One below directories too deep for the kernel's lookup is the path's fault, said as ThrowIfPathTooLong says it.
                    throw new FileOperationException(
                        kinds.TooLong.Count == hidden ? FileErrorKind.InvalidArgument : FileErrorKind.SubvolumeHasNested,
                        kinds.TooLong.Count == hidden ? Errno.ENAMETOOLONG : Errno.ENOTEMPTY,
                        kinds.TooLong.Count == hidden ? "BTRFS_IOC_INO_LOOKUP_USER" : "BTRFS_IOC_GET_SUBVOL_ROOTREF",
                        full,
                        unreached.Count > 0
                            ? $"Cannot delete the subvolume '{full}' with -Recurse: {hidden} of the subvolumes inside it cannot be reached through its directories, so they could not be checked: {SubvolumeLister.WhyUnreached(unreached, kinds, full, privileged)}{(hidden > unreached.Count ? $"; {hidden - unreached.Count} more {(hidden - unreached.Count == 1 ? "is" : "are")} in the filesystem's tree below it and in no listing (moved in, or renamed, meanwhile)" : string.Empty)}. Nothing was deleted."
                            : $"Cannot delete the subvolume '{full}' with -Recurse: {hidden} of the subvolumes inside it cannot be reached through its directories ({(privileged ? "moved in, or renamed, meanwhile" : "not both readable and searchable by this user, or moved meanwhile")}), so they could not be checked. Nothing was deleted.");
                }

                // Several deletions: the kernel would refuse a later one only after the earlier ones are gone. One alone:
                // said before any prompt (and by -WhatIf), not as the kernel's bare errno after it. Certain refusals
                // come before the checks for users, which a user other than root may only pass with -AssumeNotInUse.
                ThrowIfPathTooLong(full, named: null, listed);
                ThrowUnlessMayDeleteAll(parentDir, name, subvolumeRoot, full, self, nested, privileged);
                ThrowIfSwapfileInside(full, devices, canonical, named: null);
                ThrowIfUsed(full, canonical, devices, MountTable.Read().For(subvolumeRoot), new[] { parentDir.Handle.Fd, subvolumeRoot.Handle.Fd }, assumeNotInUse);

                var planned = new SubvolumeRemover(parentDir, subvolumeRoot, name, self, nested) { Privileged = privileged, Devices = devices, Canonical = canonical, AssumeNotInUse = assumeNotInUse };

                // A read-only one where others may rename names, refused at the run: said before any prompt and by -WhatIf
                // (before: "What if: Delete", then UnsafeDirectory. A hostile test). The run checks it again.
                planned.ThrowIfReadOnlyWhereOthersRename();
                return planned;
            }
            catch
            {
                subvolumeRoot?.Dispose();
                parentDir.Dispose();
                throw;
            }
        }

        /// <summary>
        /// Checks that subvolume <paramref name="id"/> of the filesystem holding <paramref name="onFileSystem"/> may be
        /// deleted; throws the refusal otherwise. Nothing is changed. One a mount reaches is planned by its path
        /// (<see cref="Plan"/>, every check of it); one no mount reaches (outside the mounted subvolume, e.g.
        /// snapshots kept beside the root subvolume) by its id, root only: refused when it or a subvolume in it is
        /// the default or mounted (in any mount namespace this process can read), or holds nested subvolumes
        /// without <paramref name="recurse"/>; an active swapfile in it is refused by the kernel.
        /// </summary>
        internal static SubvolumeRemover PlanById(string onFileSystem, ulong id, bool recurse, bool assumeNotInUse = false)
        {
            OpenFile fs = OpenFile.Open(onFileSystem, OpenOptions.AllowDirectory | OpenOptions.TrustedLinksOnly);
            try
            {
                BtrfsOnly.Require(fs, "delete the subvolume", because: "only btrfs has subvolumes");
                string label = $"subvolume {id} of the filesystem of '{onFileSystem}'";
                List<BtrfsSubvolumeInfo> all;
                try
                {
                    all = SubvolumeLister.List(fs, SubvolumeScope.All);
                }
                catch (FileOperationException ex) when (ex.Errno is Errno.EPERM or Errno.EACCES)
                {
                    throw new FileOperationException(FileErrorKind.AccessDenied, ex.Errno, "BTRFS_IOC_TREE_SEARCH", label, $"Cannot delete {label} by its id: only root can read the filesystem's list of subvolumes to check it. Delete it by its path, or run as root. Nothing was deleted.");
                }

                if (id == BtrfsInspect.TopLevelId)
                {
                    throw NotASubvolume(onFileSystem, "it is the top level of the filesystem", label);
                }

                BtrfsSubvolumeInfo self = all.Find(s => s.Id == id) ?? throw NotASubvolume(onFileSystem, "the filesystem has no such subvolume (deleted already, or never made)", label);
                if (self.Path is string reachable)
                {
                    // A mount reaches it: by its path, with every check made through its directories.
                    fs.Dispose();
                    SubvolumeRemover byPath = Plan(reachable, recurse, assumeNotInUse);
                    if (byPath.Subvolume.Id != id)
                    {
                        byPath.Dispose();
                        throw new FileOperationException(FileErrorKind.SubvolumeReplaced, 0, "BTRFS_IOC_GET_SUBVOL_INFO", reachable, $"Cannot delete {label}: its path '{reachable}' now leads to subvolume {byPath.Subvolume.Id} (renamed or mounted over meanwhile). Nothing was deleted; list the subvolumes again.");
                    }

                    return byPath;
                }

                List<BtrfsSubvolumeInfo> nested = NestedById(all, id);

                // Named by its path from the top level (the target of an error), the id and the filesystem.
                string where = self.TopLevelPath ?? onFileSystem;
                string named = self.TopLevelPath is string top ? $"subvolume {id} ('{top}' from the top level of the filesystem of '{onFileSystem}'; {BtrfsSubvolumeInfo.WhyNoPath(top)})" : label;
                foreach (BtrfsSubvolumeInfo s in nested.Prepend(self))
                {
                    string which = s.Id == id ? "it is" : $"the subvolume '{s.TopLevelPath ?? s.Name}' (id {s.Id}) inside it is";
                    if (s.IsDefault == true)
                    {
                        throw InUse(where, named: named, why: $"{which} the filesystem's default subvolume (mounted when no subvol= is given). Make another one the default first (btrfs subvolume set-default)");
                    }

                    if (s.MountPoint is string mountPoint)
                    {
                        throw InUse(where, named: named, why: $"{which} mounted at '{mountPoint}'. Unmount it first");
                    }
                }

                MountTable mounts = MountTable.Read();
                MountEntry? own = mounts.For(fs);
                ThrowIfMounted(where, null, self.TopLevelPath, mounts, own, assumeNotInUse, named);

                if (nested.Count > 0 && !recurse)
                {
                    throw new FileOperationException(
                        FileErrorKind.SubvolumeHasNested,
                        Errno.ENOTEMPTY,
                        "BTRFS_IOC_TREE_SEARCH",
                        where,
                        $"Cannot delete {named}: it holds {nested.Count} nested subvolume(s) ({string.Join(", ", nested.ConvertAll(n => n.TopLevelPath ?? n.Name))}). If they should all go, add -Recurse to delete them too. Nothing was deleted.");
                }

                ThrowIfNestedInReadOnly(self, nested, all, where, named);
                ThrowIfFixedById(fs, id, nested.Prepend(self), where, named);
                ThrowIfNotNameable(fs, mounts, id, nested.Prepend(self), where, named);
                ThrowIfPathTooLong(where, named, nested.Prepend(self));

                // No mount reaches it, yet a process may still be in it: a file open or a working directory kept
                // from before its mount was taken away lazily (umount -l), or the kernel (a loop device). Each
                // subvolume's top directory, opened by its id, gives the device number all its files show, and
                // the checks made by path apply.
                IReadOnlySet<(uint Major, uint Minor)> devices = DevicesById(fs, nested.Prepend(self), where, named, assumeNotInUse);
                ThrowIfSwapfileInside(where, devices, null, named);
                ThrowIfUsed(where, null, devices, own, new[] { fs.Handle.Fd }, assumeNotInUse, named);
                var planned = new SubvolumeRemover(fs, null, null, self, nested) { Privileged = true, Devices = devices, AssumeNotInUse = assumeNotInUse, Named = named };

                // Where a mount elsewhere reaches the directory holding it (or a nested one), the run refuses it: said before
                // any prompt and by -WhatIf too (a review: "What if: Delete", then UnsafeDirectory).
                foreach (BtrfsSubvolumeInfo s in nested.Prepend(self))
                {
                    if (BtrfsInspect.BackrefOf(fs, s.Id) is RootBackref up && s.TopLevelPath is string at)
                    {
                        planned.ThrowIfReachedElsewhere(s.Id, s.Id == id ? named : at, up.Parent, up.Directory, (System.IO.Path.GetDirectoryName(at) ?? "/") is { Length: > 0 } d ? d : "/", new List<BtrfsSubvolumeInfo>());
                    }
                }

                return planned;
            }
            catch
            {
                fs.Dispose();
                throw;
            }
        }

        /// <summary>
        /// The device numbers of subvolumes no mount reaches, from their top directories opened by id (root
        /// only); one that is gone meanwhile is left out. Where one cannot be opened, nothing can be proven about
        /// its users: refused unless <paramref name="assumeNotInUse"/>.
        /// </summary>
        private static HashSet<(uint Major, uint Minor)> DevicesById(OpenFile fs, IEnumerable<BtrfsSubvolumeInfo> subvolumes, string where, string named, bool assumeNotInUse)
        {
            var devices = new HashSet<(uint Major, uint Minor)>();
            foreach (BtrfsSubvolumeInfo s in subvolumes)
            {
                try
                {
                    using SafeFileDescriptor? top = BtrfsSubvolumes.OpenTopById(fs.Handle, fs.Path, s.Id);
                    if (top is not null && FileStatus.Of(top) is FileStatus st)
                    {
                        devices.Add((st.DevMajor, st.DevMinor));
                    }
                }
                catch (FileOperationException ex) when (!assumeNotInUse)
                {
                    throw InUse(where, named: named, why: $"it cannot be proven that no process uses it: the top directory of subvolume {s.Id} could not be opened by its id to learn its device number ({Errno.Name(ex.Errno)}). Add -AssumeNotInUse if you know that nothing uses it");
                }
                catch (FileOperationException)
                {
                }
            }

            return devices;
        }

        /// <summary>
        /// Where another mount namespace (a container's, one made by unshare or a service's private mounts) shows
        /// the subvolume at <paramref name="topLevelPath"/> or anything in it, said for a refusal; null when no
        /// namespace this process can read does. Deleting it would empty that mount under its users.
        /// </summary>
        private static string? ShownElsewhere(MountEntry? own, string? topLevelPath, bool assumeNotInUse)
        {
            if (own is null || topLevelPath is null)
            {
                return null;
            }

            List<ForeignMountTable> others = MountTable.OtherNamespaces(out List<string> unreadable);
            foreach ((string name, _, MountTable table, _) in others)
            {
                if (table.Showing(own.Major, own.Minor, topLevelPath) is string at)
                {
                    return $"it is in use in another mount namespace ({name}), where '{at}' shows it or is mounted inside it. Unmount it there first";
                }
            }

            return unreadable.Count > 0 && !assumeNotInUse ? Unproven(unreadable) : null;
        }

        /// <summary>Why a namespace that could not be read keeps a subvolume: it might be mounted there (-AssumeNotInUse goes on).</summary>
        private static string Unproven(List<string> unreadable) =>
            $"it cannot be proven that it is not mounted or used in another mount namespace: {string.Join("; ", unreadable)}, so that namespace could not be read. Add -AssumeNotInUse if you know that nothing there uses it";

        /// <summary>
        /// Refuses a subvolume a process uses: a file open or mapped in it (or in a subvolume below it), or its
        /// working or root directory there. The kernel deletes it anyway, and such a process goes on reading
        /// and writing a deleted subvolume: what it writes (fsync succeeds) is gone when it closes the file.
        /// </summary>
        private static void ThrowIfUsed(string full, string? canonical, IReadOnlySet<(uint Major, uint Minor)> devices, MountEntry? mount, int[] own, bool assumeNotInUse, string? named = null)
        {
            List<FileUser> users = FileGuards.FindUsersInside(devices, canonical, mount, own, out int unseen);
            if (users.Count > 0)
            {
                string list = string.Join(", ", users.GetRange(0, Math.Min(users.Count, 5))) + (users.Count > 5 ? $" and {users.Count - 5} more" : string.Empty);
                throw InUse(full, $"it is in use by {list}: a file open or mapped in it, or a working directory there. The kernel would delete it under them, and what they write afterwards would be lost. Stop them (or leave the directory) first", named: named);
            }

            if (FileGuards.KernelUseInside(devices, findLost: canonical is null, out List<string> unreadable, out List<string> lost) is string kernel)
            {
                throw InUse(full, $"it is in use by the kernel: {kernel}. The kernel would delete it under that user, and what is written through it afterwards would be lost", named: named);
            }

            if (lost.Count > 0 && !assumeNotInUse)
            {
                throw InUse(full, $"it cannot be proven that the kernel does not use it: {string.Join("; ", lost)} (its mount was taken away with umount -l?), so it may be in this subvolume. Unmount that first, or add -AssumeNotInUse if you know it is elsewhere", named: named);
            }

            if (unreadable.Count > 0 && !assumeNotInUse)
            {
                throw InUse(full, Unproven(unreadable), named: named);
            }

            if (unseen > 0 && !assumeNotInUse)
            {
                throw new FileOperationException(
                    FileErrorKind.InUseUnknown,
                    Errno.EACCES,
                    "/proc",
                    full,
                    $"Cannot delete the subvolume '{full}': it cannot be proven that no process uses it: {unseen} process(es) cannot be seen by this user in /proc (other users' processes; as root without CAP_SYS_PTRACE, as in a container or a service with a narrowed capability set, where their descriptors lead), and the kernel would delete it under any of them that has a file open there (their later writes would be lost). Run as root with CAP_SYS_PTRACE, or add -AssumeNotInUse if you know that nothing uses it. Nothing was deleted.");
            }
        }

        /// <summary>Deleted even where some processes cannot be seen (not root).</summary>
        private bool AssumeNotInUse { get; init; }

        /// <summary>The device numbers of the subvolume and the nested ones a path reaches (planned by path only).</summary>
        private IReadOnlySet<(uint Major, uint Minor)>? Devices { get; init; }

        /// <summary>The subvolume's path as listed (planned by path only).</summary>
        private string? Canonical { get; init; }

        /// <summary>How errors name a subvolume no mount reaches (planned by id only).</summary>
        private string? Named { get; init; }

        /// <summary>Whether the root tree could be read (root): refusals of the kernel are then about use, not permission.</summary>
        private bool Privileged { get; init; }

        /// <summary>
        /// As root: how many subvolumes the root tree places below <paramref name="id"/> (by their parents) that
        /// the listing through the directories did not find; 0 where the root tree cannot be read.
        /// </summary>
        private static int Unlisted(OpenFile anyOnFileSystem, ulong id, List<BtrfsSubvolumeInfo> listed, List<ulong> unreached, out bool privileged)
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
            below.ExceptWith(unreached); // counted already (they were counted twice)
            return below.Count;
        }

        /// <summary>The filesystem the subvolume is on (its id), to measure each filesystem once.</summary>
        internal Guid FileSystem => BtrfsSearch.FileSystemId(root ?? parent) ?? Guid.Empty;

        /// <summary>How the subvolume is named in messages and progress: its path, else its path from the top level.</summary>
        internal string Label => Subvolume.Path ?? root?.Path ?? (Subvolume.TopLevelPath is string top ? $"{top} (from the top level)" : $"subvolume {Subvolume.Id}");

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
            SubvolumeSpaceMeter.Measure((root ?? parent).Handle, Label, cancel);

        /// <summary>Deletes the nested subvolumes (deepest first) and the subvolume; with <paramref name="wait"/> waits until the cleaner has freed their space.</summary>
        internal void Run(bool wait, Action<BtrfsSubvolumeInfo>? deleted = null, CancellationToken cancel = default)
        {
            // Again just before anything goes: a confirmation prompt may have waited for minutes, and a mount made
            // meanwhile holds no descriptor (the kernel deletes the subvolume under it, or detaches a mount inside).
            // Its place is learned again from its descriptor (renamed meanwhile?) or, by id, from the root tree.
            if (root is not null && Devices is not null && Canonical is not null)
            {
                // The nested subvolumes again too: one made (or moved in) meanwhile, or one made read-only, would stop
                // the deletion half way, after the others are gone.
                List<BtrfsSubvolumeInfo> listedNow = SubvolumeLister.List(root, SubvolumeScope.Below, out List<ulong> unreached);
                BtrfsSubvolumeInfo now = listedNow[0];
                List<BtrfsSubvolumeInfo> nestedNow = listedNow.GetRange(1, listedNow.Count - 1);
                ThrowIfNestedChanged(Label, nestedNow, unreached.Count + Unlisted(parent, Subvolume.Id, listedNow, unreached, out _), null);
                // Itself too where its name still leads to it (made immutable meanwhile, say); renamed, it is deleted by id.
                bool selfByName = FileStatus.OfAt(parent.Handle, name!) is FileStatus named && named.SameInode(root.Status);
                ThrowIfPathTooLong(Label, named: null, listedNow);
                ThrowUnlessMayDeleteAll(parent, name!, root, root.Path.TrimEnd('/'), now, nestedNow, Privileged, selfToo: selfByName);
                MountTable mounts = MountTable.Read();
                MountEntry? own = mounts.For(root);
                ThrowIfMounted(Label, now.Path ?? Canonical, now.TopLevelPath ?? Subvolume.TopLevelPath, mounts, own, AssumeNotInUse, named: null);
                ThrowIfSwapfileInside(Label, Devices, now.Path ?? Canonical, named: null);
                ThrowIfUsed(Label, Canonical, Devices, own, new[] { parent.Handle.Fd, root.Handle.Fd }, AssumeNotInUse);
            }
            else if (root is null && Devices is not null)
            {
                string where = Subvolume.TopLevelPath ?? parent.Path;
                List<BtrfsSubvolumeInfo> allNow = SubvolumeLister.List(parent, SubvolumeScope.All);
                List<BtrfsSubvolumeInfo> nestedNow = NestedById(allNow, Subvolume.Id);
                ThrowIfNestedChanged(where, nestedNow, 0, Named);
                ThrowIfNestedInReadOnly(allNow.Find(s => s.Id == Subvolume.Id) ?? Subvolume, nestedNow, allNow, where, Named ?? where); // as it is now: made read-only meanwhile?
                ThrowIfFixedById(parent, Subvolume.Id, nestedNow.Prepend(Subvolume), where, Named ?? where); // made immutable meanwhile?
                ThrowIfPathTooLong(where, Named, nestedNow.Prepend(allNow.Find(s => s.Id == Subvolume.Id) ?? Subvolume));
                MountTable mounts = MountTable.Read();
                string? top = Subvolume.TopLevelPath;
                try
                {
                    using var map = new SubvolumeMap(parent, mounts);
                    top = map.PathOf(Subvolume.Id) ?? top;
                }
                catch (FileOperationException)
                {
                    // the path it had when it was planned
                }

                MountEntry? own = mounts.For(parent);
                ThrowIfMounted(where, null, top, mounts, own, AssumeNotInUse, Named);
                ThrowIfSwapfileInside(where, Devices, null, Named);
                ThrowIfUsed(where, null, Devices, own, new[] { parent.Handle.Fd }, AssumeNotInUse, Named);
            }

            var order = new List<BtrfsSubvolumeInfo>(Nested);
            order.Reverse(); // children were listed after their parents
            var done = new List<BtrfsSubvolumeInfo>();
            ThrowIfReadOnlyWhereOthersRename();
            using (StagingDirectory? hold = root is null ? null : Hold())
            using (SubvolumeMap? byId = root is null ? IdMap() : null)
            {
                // The nested ones' paths are the listing's (links resolved), as the subvolume's own there is; the path it
                // was given may go through a link (/home to /var/home).
                string top = (Subvolume.Path ?? root?.Path)?.TrimEnd('/') ?? string.Empty;
                if (root is not null && hold is null && order.Count > 0)
                {
                    // No space for the directory: the subvolume itself may go where it is (only root and this user can
                    // rename there, Hold checked), but the directories holding the nested ones were not checked so.
                    throw new FileOperationException(FileErrorKind.InsufficientSpace, Errno.ENOSPC, "mkdirat", Label, $"Cannot delete the subvolume '{Label}' with -Recurse: there is no space to make the directory where its {order.Count} nested subvolume(s) would be deleted out of other users' reach. Nothing was deleted. Free some space first (or delete the nested ones one at a time).");
                }

                foreach (BtrfsSubvolumeInfo n in order)
                {
                    cancel.ThrowIfCancellationRequested();
                    StillBelow(n, done);
                    if (hold is not null && root is not null && n.Path is string p && p.StartsWith(top + "/", StringComparison.Ordinal))
                    {
                        // Where it was listed, below the subvolume's descriptor (not by its path from the top).
                        string relative = p[(top.Length + 1)..];
                        int cut = relative.LastIndexOf('/');
                        using OpenFile? holder = cut < 0 ? null : SubvolumeLister.OpenBelow(root.Handle, top, relative[..cut]);
                        if (cut >= 0 && holder is null)
                        {
                            throw MovedOut(n, done);
                        }

                        DeleteHeld(hold, holder?.Handle ?? root.Handle, relative[(cut + 1)..], n.Id, n.Uuid, p, done);
                    }
                    else if (byId is not null)
                    {
                        DeleteByIdHeld(byId, n.Id, n.Uuid, n.Path ?? n.TopLevelPath ?? n.Name, done);
                    }
                    else if (hold is not null && IdMap() is SubvolumeMap found)
                    {
                        // Not where the listing put it below the subvolume's path: found by its back reference, held there.
                        using (found)
                        {
                            DeleteByIdHeld(found, n.Id, n.Uuid, n.Path ?? n.TopLevelPath ?? n.Name, done);
                        }
                    }
                    else
                    {
                        Delete(n.Id, n.Path ?? n.TopLevelPath ?? n.Name, byName: null, done);
                    }

                    done.Add(n);
                    deleted?.Invoke(n);
                }

                if (hold is not null && root is not null)
                {
                    // Under its name, or (renamed after the prompt) under the name its descriptor has now.
                    OpenFile? elsewhere = null;
                    try
                    {
                        string leaf = name!;
                        SafeFileDescriptor holder = parent.Handle;
                        if (FileStatus.OfAt(parent.Handle, leaf) is not FileStatus named || !named.SameInode(root.Status))
                        {
                            string now = Names.PathOfDescriptor(root.Handle) is string at && at.StartsWith('/') && !at.EndsWith(" (deleted)", StringComparison.Ordinal) && at.Length > 1
                                ? at
                                : throw new FileOperationException(FileErrorKind.NotFound, Errno.ENOENT, "readlink", Label, $"Cannot delete the subvolume '{Label}': it was deleted or moved where no path of this process reaches since the deletion was planned.{(done.Count > 0 ? Deleted(done) : " Nothing was deleted.")}");
                            elsewhere = OpenFile.Open(System.IO.Path.GetDirectoryName(now) ?? "/", OpenOptions.AllowDirectory);
                            holder = elsewhere.Handle;
                            leaf = System.IO.Path.GetFileName(now);
                        }

                        DeleteHeld(hold, holder, leaf, Subvolume.Id, Subvolume.Uuid, Label, done);
                    }
                    finally
                    {
                        elsewhere?.Dispose();
                    }
                }
                else if (byId is not null)
                {
                    DeleteByIdHeld(byId, Subvolume.Id, Subvolume.Uuid, Label, done);
                }
                else
                {
                    Delete(Subvolume.Id, Label, byName: name, done);
                }
            }

            // An open directory of a deleted subvolume keeps it from the cleaner: close it before waiting.
            string rootPath = Label;
            root?.Dispose();
            done.Add(Subvolume);
            deleted?.Invoke(Subvolume);
            if (wait)
            {
                foreach (BtrfsSubvolumeInfo s in done)
                {
                    WaitCleaned(s.Id, s.Id == Subvolume.Id ? rootPath : s.Path ?? s.TopLevelPath ?? s.Name, cancel);
                }

                // The cleaner's last transaction frees the extents, but they stay pinned (not free space yet) until
                // it commits: without this commit the free space a runbook read right after -Wait was unchanged
                // (and 3 s later), and a loop deleting the oldest snapshot until enough was free deleted 4 of 5.
                _ = BtrfsSubvolumes.TryCommitAndClean(parent.Handle);
            }
        }

        /// <inheritdoc/>
        public void Dispose()
        {
            root?.Dispose();
            parent.Dispose();
        }

        /// <summary>
        /// Just before a nested subvolume is deleted by id (which reaches it wherever it is, for root and, with
        /// user_subvol_rm_allowed, for its owner too): as root its chain of parents in the root tree must still lead
        /// to the subvolume being deleted; otherwise its path below that subvolume's descriptor, opened one name at a
        /// time without following a link, must still lead to it. Else it was moved out meanwhile and is kept.
        /// </summary>
        private void StillBelow(BtrfsSubvolumeInfo nested, List<BtrfsSubvolumeInfo> done)
        {
            if (!Privileged)
            {
                string top = root?.Path.TrimEnd('/') ?? string.Empty;
                if (root is not null && nested.Path is string p && p.StartsWith(top + "/", StringComparison.Ordinal))
                {
                    using OpenFile? now = SubvolumeLister.OpenBelow(root.Handle, root.Path, p[(top.Length + 1)..]);
                    if (now is not null && now.Status.Inode == BtrfsInspect.SubvolumeRootInode && IdOf(now) == nested.Id)
                    {
                        return;
                    }
                }

                throw MovedOut(nested, done);
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

            throw MovedOut(nested, done);
        }

        private FileOperationException MovedOut(BtrfsSubvolumeInfo nested, List<BtrfsSubvolumeInfo> done) => new(
            FileErrorKind.SubvolumeHasNested,
            Errno.ENOTEMPTY,
            "BTRFS_IOC_TREE_SEARCH_V2",
            nested.Path ?? nested.TopLevelPath ?? nested.Name,
            $"Cannot delete '{nested.Path ?? nested.TopLevelPath ?? nested.Name}': it is no longer inside '{Label}' (moved since it was listed), so it was kept, and '{Label}' too.{Deleted(done)}");

        /// <summary>The id of the subvolume whose root is open; 0 when it cannot be read (deleted meanwhile).</summary>
        private static ulong IdOf(OpenFile subvolumeRoot)
        {
            try
            {
                return BtrfsSubvolumes.Info(subvolumeRoot.Handle, subvolumeRoot.Path).Id;
            }
            catch (FileOperationException)
            {
                return 0;
            }
        }

        /// <summary>The subvolumes below subvolume <paramref name="id"/> in the list of all, each after its parent (from the root tree's parent links).</summary>
        private static List<BtrfsSubvolumeInfo> NestedById(List<BtrfsSubvolumeInfo> all, ulong id)
        {
            var nested = new List<BtrfsSubvolumeInfo>();
            var parents = new Queue<ulong>();
            parents.Enqueue(id);
            var below = new HashSet<ulong> { id };
            while (parents.Count > 0)
            {
                ulong up = parents.Dequeue();
                foreach (BtrfsSubvolumeInfo s in all)
                {
                    if (s.ParentId == up && below.Add(s.Id))
                    {
                        nested.Add(s);
                        parents.Enqueue(s.Id);
                    }
                }
            }

            return nested;
        }

        /// <summary>
        /// Deleting a subvolume changes the directory holding it: inside a read-only subvolume the kernel refuses that
        /// (EROFS) even for root, after the ones nested deeper were deleted already. Refused before anything goes.
        /// </summary>
        private static void ThrowIfNestedInReadOnly(BtrfsSubvolumeInfo self, List<BtrfsSubvolumeInfo> nested, List<BtrfsSubvolumeInfo> all, string where, string named)
        {
            if (all.Find(s => s.Id == self.ParentId) is { IsReadOnly: true } holder)
            {
                throw InReadOnlyHolder(where, $"it is inside the read-only subvolume '{holder.TopLevelPath ?? holder.Name}' (id {holder.Id})", nested.Count, named);
            }

            BtrfsSubvolumeInfo? HolderOf(BtrfsSubvolumeInfo n) => n.ParentId == self.Id ? self : nested.Find(h => h.Id == n.ParentId);
            if (nested.Find(n => HolderOf(n)?.IsReadOnly == true) is { } inside && HolderOf(inside) is { } readOnly)
            {
                throw new FileOperationException(
                    FileErrorKind.ReadOnlySnapshot,
                    Errno.EROFS,
                    "BTRFS_IOC_TREE_SEARCH",
                    where,
                    $"Cannot delete {named} with -Recurse: the nested subvolume '{inside.TopLevelPath ?? inside.Name}' is inside the read-only subvolume '{readOnly.TopLevelPath ?? readOnly.Name}' (id {readOnly.Id}), and the kernel refuses to delete anything inside a read-only subvolume, so only part of the tree could be deleted. Nothing was deleted. Make it writable first (btrfs property set <its path> ro false) if it should go.");
            }
        }

        /// <summary>
        /// A subvolume whose own entry is in a read-only subvolume: the kernel refuses to delete it (EROFS, even for
        /// root), and with nested subvolumes only after those were deleted. Refused before anything goes.
        /// </summary>
        private static FileOperationException InReadOnlyHolder(string where, string why, int nested, string? named = null) => new(
            FileErrorKind.ReadOnlySnapshot,
            Errno.EROFS,
            "BTRFS_IOC_GET_SUBVOL_INFO",
            where,
            $"Cannot delete {named ?? $"the subvolume '{where}'"}: {why}, and the kernel changes nothing in a read-only subvolume, not even for root{(nested > 0 ? $" (with -Recurse the {nested} nested subvolume(s) would have been deleted before the kernel refused it)" : string.Empty)}. Nothing was deleted. Make that subvolume writable first (btrfs property set <its path> ro false) if it should go.");

        /// <summary>
        /// After the prompt: the subvolumes nested in it must be the ones planned (and confirmed). One made or moved in
        /// meanwhile, moved out, or no longer reachable, is refused before anything is deleted.
        /// </summary>
        private void ThrowIfNestedChanged(string where, List<BtrfsSubvolumeInfo> nestedNow, int hidden, string? named)
        {
            var planned = new HashSet<ulong>(Nested.Select(n => n.Id));
            List<BtrfsSubvolumeInfo> added = nestedNow.FindAll(n => !planned.Contains(n.Id));
            var present = new HashSet<ulong>(nestedNow.Select(n => n.Id));
            List<BtrfsSubvolumeInfo> gone = Nested.Where(n => !present.Contains(n.Id)).ToList();
            if (added.Count == 0 && gone.Count == 0 && hidden == 0)
            {
                return;
            }

            string Names(List<BtrfsSubvolumeInfo> list) => string.Join(", ", list.ConvertAll(n => $"'{n.Path ?? n.TopLevelPath ?? n.Name}' (id {n.Id})"));
            string what = added.Count > 0 ? $"{Names(added)} {(added.Count == 1 ? "was" : "were")} made or moved into it"
                : gone.Count > 0 ? $"{Names(gone)} {(gone.Count == 1 ? "is" : "are")} no longer in it (deleted or moved out)"
                : $"{hidden} subvolume(s) inside it can no longer be reached through its directories";
            throw new FileOperationException(
                FileErrorKind.SubvolumeHasNested,
                Errno.ENOTEMPTY,
                "BTRFS_IOC_GET_SUBVOL_ROOTREF",
                where,
                $"Cannot delete {named ?? $"the subvolume '{Label}'"}: since the deletion was planned, {what}, so it is not what was confirmed. Nothing was deleted. See what is there now (Get-BtrfsSubvolume -Recurse) and run it again.");
        }

        /// <summary>
        /// With nested subvolumes: what the kernel asks before each deletion, asked for all of them first (for
        /// everyone: neither the subvolume's root nor the directory holding it immutable or append-only; not root:
        /// write and search permission on both, and the sticky bit's owner rule), so a refusal comes before
        /// anything is deleted, not after some are.
        /// </summary>
        private static void ThrowUnlessMayDeleteAll(OpenFile parentDir, string name, OpenFile subvolumeRoot, string full, BtrfsSubvolumeInfo self, List<BtrfsSubvolumeInfo> nested, bool privileged, bool selfToo = true)
        {
            if (selfToo)
            {
                // Its own entry is in the directory holding it: in a read-only subvolume the kernel refuses that
                // (EROFS) even for root, and with -Recurse only after the nested ones were deleted.
                if (BtrfsSubvolumes.Info(parentDir.Handle, parentDir.Path) is { IsReadOnly: true } holder)
                {
                    throw InReadOnlyHolder(full, $"the directory that holds it ('{parentDir.Path}') is in the read-only subvolume '{holder.Name}' (id {holder.Id})", nested.Count);
                }

                ThrowUnlessMayDelete(parentDir.Handle, name, full, privileged, self.IsReadOnly);
            }

            string top = full.TrimEnd('/');
            foreach (BtrfsSubvolumeInfo n in nested)
            {
                string path = n.Path ?? n.Name;
                if (n.Path is not string p || !p.StartsWith(top + "/", StringComparison.Ordinal))
                {
                    throw new FileOperationException(FileErrorKind.SubvolumeHasNested, Errno.ENOTEMPTY, "BTRFS_IOC_GET_SUBVOL_ROOTREF", full, $"Cannot delete the subvolume '{full}' with -Recurse: the nested subvolume '{path}' cannot be reached through its directories, so it could not be checked. Nothing was deleted.");
                }

                string relative = p[(top.Length + 1)..];
                int cut = relative.LastIndexOf('/');
                using OpenFile? holder = cut < 0 ? null : SubvolumeLister.OpenBelow(subvolumeRoot.Handle, full, relative[..cut]);
                if (cut >= 0 && holder is null)
                {
                    throw new FileOperationException(FileErrorKind.SubvolumeHasNested, Errno.ENOTEMPTY, "openat", path, $"Cannot delete the subvolume '{full}' with -Recurse: the directory holding '{path}' cannot be opened any more (moved or deleted meanwhile). Nothing was deleted.");
                }

                // Deleting a subvolume changes the directory holding it: inside a read-only subvolume the kernel
                // refuses that (EROFS) even for root, after the subvolumes nested deeper were already deleted.
                SafeFileDescriptor holding = holder?.Handle ?? subvolumeRoot.Handle;
                if (BtrfsSubvolumes.Info(holding, path) is { IsReadOnly: true } readOnly)
                {
                    string holderPath = cut < 0 ? top : top + "/" + relative[..cut];
                    string where = nested.Select(o => o.Path).OfType<string>().Where(o => holderPath == o || holderPath.StartsWith(o + "/", StringComparison.Ordinal))
                        .OrderByDescending(o => o.Length).FirstOrDefault() ?? top;
                    throw new FileOperationException(FileErrorKind.ReadOnlySnapshot, Errno.EROFS, "BTRFS_IOC_GET_SUBVOL_INFO", full, $"Cannot delete the subvolume '{full}' with -Recurse: the nested subvolume '{path}' is inside the read-only subvolume '{where}', and the kernel refuses to delete anything inside a read-only subvolume, so only part of the tree could be deleted. Nothing was deleted. Make it writable first (btrfs property set '{where}' ro false) if it should go.");
                }

                try
                {
                    ThrowUnlessMayDelete(holding, relative[(cut + 1)..], path, privileged, n.IsReadOnly);
                }
                catch (FileOperationException ex) when (ex.Kind == FileErrorKind.NotFound)
                {
                    throw new FileOperationException(FileErrorKind.SubvolumeHasNested, ex.Errno, ex.Operation, full, $"Cannot delete the subvolume '{full}' with -Recurse: the nested subvolume '{path}' was deleted or moved while the deletion was being planned. Nothing was deleted; run it again.", ex);
                }
            }
        }

        /// <summary>The attributes with which the kernel refuses to delete a subvolume, or one from the directory holding it, even for root.</summary>
        private const InodeFlags Fixed = InodeFlags.Immutable | InodeFlags.AppendOnly;

        /// <summary>
        /// By id (no mount reaches it; root only): neither a subvolume to delete nor the directory holding it immutable or
        /// append-only, read from their directories opened by id (the directory holding one, by its path inside the
        /// subvolume holding it, from the kernel, opened one name at a time and checked to be that inode), so the refusal
        /// comes before anything is deleted, as by path. (Before: -WhatIf promised the deletion, and the kernel's EPERM came
        /// after the nested ones were gone, blamed on a default subvolume, a swapfile or a send; a hostile test.) One that
        /// cannot be opened so (a name on the way not UTF-8, renamed this instant) is read from its inode item in the tree.
        /// </summary>
        private static void ThrowIfFixedById(OpenFile fs, ulong id, IEnumerable<BtrfsSubvolumeInfo> subvolumes, string where, string named)
        {
            bool committed = false;
            foreach (BtrfsSubvolumeInfo s in subvolumes)
            {
                string which = s.Id == id ? "it" : $"the subvolume '{s.TopLevelPath ?? s.Name}' (id {s.Id}) inside it";
                string? why = null;
                bool? own = null;
                using (SafeFileDescriptor? top = OpenTopOrNull(fs, s.Id))
                {
                    if (top is not null && InodeAttributes.TryGet(top, where) is InodeFlags flags)
                    {
                        own = (flags & Fixed) != 0;
                    }
                }

                if (own ?? FixedInTree(fs, s.Id, BtrfsInspect.SubvolumeRootInode, ref committed))
                {
                    why = $"{which} is immutable or append-only (chattr +i or +a), which the kernel refuses to delete even for root";
                }
                else if (BtrfsInspect.BackrefOf(fs, s.Id) is RootBackref up)
                {
                    bool? holding = null;
                    if (BtrfsInspect.TryLookup(fs.Handle, up.Parent, up.Directory, out _, out string inside) == 0)
                    {
                        using SafeFileDescriptor? holdingTop = OpenTopOrNull(fs, up.Parent);
                        string relative = inside.Trim('/');
                        using OpenFile? below = holdingTop is null || relative.Length == 0 ? null : SubvolumeLister.OpenBelow(holdingTop, "/" + relative, relative);
                        SafeFileDescriptor? holder = relative.Length == 0 ? holdingTop : below?.Handle;
                        if (holder is not null && FileStatus.Of(holder) is FileStatus st && st.Inode == up.Directory && InodeAttributes.TryGet(holder, "/" + relative) is InodeFlags flags)
                        {
                            holding = (flags & Fixed) != 0;
                        }
                    }

                    // Not reached by name (a name that is not UTF-8, renamed this instant): read from the tree (after a
                    // commit, so a change made since the last one is in it), not left to the kernel's EPERM half way.
                    if (holding ?? FixedInTree(fs, up.Parent, up.Directory, ref committed))
                    {
                        why = $"the directory that holds {which} is immutable or append-only (chattr +i or +a), which the kernel refuses even for root";
                    }
                }

                if (why is not null)
                {
                    throw new FileOperationException(FileErrorKind.Immutable, Errno.EPERM, "FS_IOC_GETFLAGS", where, $"Cannot delete {named}: {why}. Nothing was deleted (the subvolumes around it neither). Clear the attribute first (chattr -i or -a, as root, through a mount that reaches it).");
                }
            }
        }

        /// <summary>Whether inode <paramref name="inode"/> of subvolume <paramref name="tree"/> is immutable or append-only by its item in the tree (the filesystem committed first, once); false where it cannot be read.</summary>
        private static bool FixedInTree(OpenFile fs, ulong tree, ulong inode, ref bool committed)
        {
            if (!committed)
            {
                committed = true;
                _ = Files.TrySyncFileSystem(fs.Handle);
            }

            try
            {
                return BtrfsInspect.IsImmutableOrAppendOnlyInTree(fs, tree, inode);
            }
            catch (FileOperationException)
            {
                return false;
            }
        }

        /// <summary>The top directory of subvolume <paramref name="id"/> opened by its id for reading; null where that cannot be done.</summary>
        private static SafeFileDescriptor? OpenTopOrNull(OpenFile fs, ulong id)
        {
            try
            {
                return BtrfsSubvolumes.OpenTopById(fs.Handle, fs.Path, id, readable: true);
            }
            catch (FileOperationException)
            {
                return null;
            }
        }

        private static void ThrowUnlessMayDelete(SafeFileDescriptor holder, string name, string path, bool privileged, bool readOnly)
        {
            string? why = null;
            InodeFlags own;
            using (OpenFile victim = OpenFile.Open(new FileLocation(holder, name, path), OpenOptions.AllowDirectory | OpenOptions.NoFollow))
            {
                own = InodeAttributes.Get(victim.Handle, path);
            }

            bool fixedAttribute = true;
            if ((own & Fixed) != 0)
            {
                why = "it is immutable or append-only (chattr +i or +a), which the kernel refuses to delete even for root";
            }
            else if ((InodeAttributes.Get(holder, path) & Fixed) != 0)
            {
                why = "the directory that holds it is immutable or append-only (chattr +i or +a), which the kernel refuses even for root";
            }
            else
            {
                fixedAttribute = false;
            }

            if (fixedAttribute)
            {
                // What New-BtrfsSubvolume and New-BtrfsSnapshot call it, and no "run as root", which changes nothing here
                // (a hostile review: said so to root, as AccessDenied).
                throw new FileOperationException(FileErrorKind.Immutable, Errno.EPERM, "FS_IOC_GETFLAGS", path, $"Cannot delete the subvolume '{path}': {why}. Nothing was deleted (the subvolumes around it neither); clear the attribute first (chattr -i or -a, as root).");
            }
            else if (privileged)
            {
                return;
            }
            else if (!Files.MayWriteAndSearch(holder, "."))
            {
                why = "this user may not write in the directory that holds it";
            }
            else if (readOnly)
            {
                why = "it is read-only (a read-only snapshot): of a user other than root the kernel asks write permission on its top directory, which a read-only subvolume never gives (btrfs property set PATH ro false makes it writable; an empty one can also be removed with rmdir)";
            }
            else if (!Files.MayWriteAndSearch(holder, name))
            {
                why = "this user may not write in it (the kernel asks that of a user deleting a subvolume)";
            }
            else if (FileStatus.Of(holder) is FileStatus dir && FileGuards.StickyForbids(dir, FileStatus.OfAt(holder, name)))
            {
                why = "the directory that holds it has the sticky bit, and this user owns neither it nor that directory";
            }

            if (why is not null)
            {
                throw new FileOperationException(FileErrorKind.AccessDenied, Errno.EACCES, "faccessat", path, $"Cannot delete the subvolume '{path}': {why}, so the kernel would refuse it. Nothing was deleted (the subvolumes around it neither); run as root, or make it deletable first.");
            }
        }

        /// <summary>
        /// Refuses a subvolume a mount shows or has a mount inside: in this namespace by the filesystem's own terms
        /// (<see cref="MountTable.Showing"/>: a mount whose root is in it, or one on a directory in it, through whichever
        /// view of the filesystem reaches that directory), by path below <paramref name="canonical"/>, and in every
        /// other mount namespace this process can read.
        /// </summary>
        private static void ThrowIfMounted(string where, string? canonical, string? topLevelPath, MountTable mounts, MountEntry? own, bool assumeNotInUse, string? named)
        {
            if (own is not null && topLevelPath is not null && mounts.Showing(own.Major, own.Minor, topLevelPath) is string shown)
            {
                throw InUse(where, named: named, why: $"'{shown}' shows it or is mounted inside it. Unmount it first");
            }

            if (canonical is not null && MountedInside(mounts, canonical) is string inside)
            {
                throw InUse(where, named: named, why: $"'{inside}' inside it is a mount point. Unmount it first");
            }

            if (ShownElsewhere(own, topLevelPath, assumeNotInUse) is string elsewhere)
            {
                throw InUse(where, named: named, why: elsewhere);
            }
        }

        /// <summary>
        /// Each subvolume is deleted by its id (SNAP_DESTROY_V2 SPEC_BY_ID), for which the kernel builds its path from the
        /// top level of the filesystem in a buffer of PATH_MAX (btrfs_get_subvol_name_from_objectid): one whose path is
        /// longer than 4,095 bytes is refused there (ENAMETOOLONG), after the ones deleted before it. Refused here, before
        /// anything goes (and by -WhatIf). (Before: a tree with one nested so deep lost the subvolumes deleted before it.)
        /// </summary>
        private static void ThrowIfPathTooLong(string where, string? named, IEnumerable<BtrfsSubvolumeInfo> toDelete)
        {
            foreach ((BtrfsSubvolumeInfo s, int i) in toDelete.Select((s, i) => (s, i))) // the subvolume itself first
            {
                // No path from the top level where the kernel's lookup found it too long (before: -WhatIf said it would go,
                // and the deletion said it was renamed again and again; a hostile test); or one longer than the kernel builds.
                int bytes = s.TopLevelPath is string top ? System.Text.Encoding.UTF8.GetByteCount(top) : 0;
                string? why = s.TopLevelPath is null && s.PathTooLong
                    ? "is longer than the kernel's lookup returns (a directory path inside a subvolume of more than about 4,000 bytes), and a subvolume is deleted here by its id, for which the kernel builds that path, no longer than that"
                    : bytes > BtrfsSubvolumes.DeletablePathMax
                        ? string.Create(CultureInfo.InvariantCulture, $"is {bytes:N0} bytes long, and the kernel deletes a subvolume only when that path is at most {BtrfsSubvolumes.DeletablePathMax:N0} bytes (it builds it in a buffer of PATH_MAX)")
                        : null;
                if (why is not null)
                {
                    string which = i == 0 ? "its path" : $"the path of the subvolume '{s.Path ?? s.TopLevelPath ?? s.Name}' (id {s.Id}) inside it";
                    throw new FileOperationException(
                        FileErrorKind.InvalidArgument,
                        Errno.ENAMETOOLONG,
                        s.TopLevelPath is null ? "BTRFS_IOC_INO_LOOKUP" : "BTRFS_IOC_SNAP_DESTROY_V2",
                        where,
                        $"Cannot delete {named ?? $"the subvolume '{where}'"}: {which} from the top level of the filesystem {why}. Move it (mv) to a shorter path first, then delete it. Nothing was deleted.");
                }
            }
        }

        /// <summary>Refuses a subvolume with an active swapfile in it or in a subvolume below it (by their device numbers, and by path).</summary>
        private static void ThrowIfSwapfileInside(string where, IReadOnlySet<(uint Major, uint Minor)> devices, string? canonical, string? named)
        {
            SwapTable swaps = SwapTable.Read();
            foreach ((uint major, uint minor) in devices)
            {
                if (swaps.AnyOnDevice(major, minor))
                {
                    throw InUse(where, named: named, why: "an active swapfile is inside it (or in a subvolume below it). Switch it off first (swapoff)");
                }
            }

            if (canonical is not null && swaps.AnyUnder(canonical))
            {
                throw InUse(where, named: named, why: "an active swapfile is inside it. Switch it off first (swapoff)");
            }

            // A swapfile switched on through a mount that is gone cannot be placed, and may be in any of them. The
            // kernel refuses only the subvolume that holds it, and only when its turn comes: the nested ones, deleted
            // first, would be gone by then. One subvolume alone is deleted or refused by the kernel as a whole.
            if (devices.Count > 1 && swaps.Unplaced is { Count: > 0 } unplaced)
            {
                throw InUse(where, named: named, why: $"an active swapfile shown in /proc/swaps as '{unplaced[0]}' cannot be found by that path (it was switched on through a mount that is gone), so it may be in one of the {devices.Count} subvolumes, and the kernel would refuse the one that holds it only after the ones below it were deleted. Delete the nested subvolumes one at a time (each alone is deleted or refused whole), or switch that swapfile off first (swapoff accepts any path that reaches the same file)");
            }
        }

        /// <summary>
        /// The directory the subvolumes are deleted in: made beside the subvolume, only this user may change it (mode
        /// 0700), so nobody else can rename what is in it. Null where it cannot be made for lack of space (deleting
        /// is how a full filesystem gets space back): they are deleted where they are then, as before.
        /// </summary>
        private StagingDirectory? Hold() => Hold(parent, name!, Label);

        private static StagingDirectory? Hold(OpenFile parent, string name, string label)
        {
            StagingDirectory hold;
            try
            {
                hold = StagingDirectory.Create(parent.Handle, parent.Path, name, 0x1C0, StagingDirectory.RemovalMarker);
            }
            catch (FileOperationException ex) when (ex.Errno is Errno.ENOSPC or Errno.EDQUOT)
            {
                // Deleted where it is (deleting is how a full filesystem gets space back), if nobody else can rename there.
                ThrowUnlessOnlyOwnersRename(parent.Handle, label, $"there is no space to make the directory where it would be deleted out of other users' reach ({Errno.Name(ex.Errno)}). Free some space first", new List<BtrfsSubvolumeInfo>());
                return null;
            }
            catch (FileOperationException ex)
            {
                throw new FileOperationException(ex.Kind, ex.Errno, ex.Operation, label, $"Cannot delete the subvolume '{label}': the directory it is deleted in could not be made beside it ({ex.Message}) Nothing was deleted.", ex);
            }

            try
            {
                // Exactly 0700 whatever the umask (one of 0777 would leave a directory this user could not move into).
                Metadata.SetMode(hold.Handle, 0x1C0, hold.HiddenPath, "Cannot delete the subvolume: the directory it is deleted in could not be made private", "Nothing was deleted.");

                // Ours: another user who renamed it away and made one of theirs under its name in the instant between
                // making and opening it would own "the directory only this user may change" (a review).
                if (FileStatus.Of(hold.Handle) is not FileStatus made || made.Uid != Metadata.FileSystemUserId || (made.Permissions & 0xFFF) != 0x1C0)
                {
                    throw new FileOperationException(FileErrorKind.UnsafeDirectory, 0, "mkdirat", label, $"Cannot delete the subvolume '{label}': the directory just made beside it to delete it in was replaced by another user's. Nothing was deleted; see who can write in '{parent.Path}'.");
                }

                return hold;
            }
            catch
            {
                hold.Dispose();
                throw;
            }
        }

        /// <summary>
        /// Deletes the subvolume named <paramref name="leaf"/> in <paramref name="holder"/> where nobody else can rename it:
        /// moved (renameat2 RENAME_NOREPLACE) into <paramref name="hold"/>, checked there to be subvolume <paramref name="id"/>
        /// of <paramref name="uuid"/>, and deleted by its name there. The kernel deletes whatever a name holds when its turn
        /// comes (by id too: it turns the id into a parent and a name first), so a rename in between, two subvolumes' names
        /// exchanged (renameat2 RENAME_EXCHANGE), made it delete the other one (a hostile review: 6 runs in 40). Anything
        /// else found under the name is given it back and refused (SubvolumeReplaced); so is the subvolume when the kernel
        /// refuses it. Where the move is short of space, it is deleted where it is (<see cref="Delete"/>).
        /// </summary>
        private void DeleteHeld(StagingDirectory hold, SafeFileDescriptor holder, string leaf, ulong id, Guid uuid, string path, List<BtrfsSubvolumeInfo> done)
        {
            int errno = Names.TryMoveNoReplace(holder, leaf, hold.Handle, leaf);
            if (errno is Errno.ENOSPC or Errno.EDQUOT or Errno.EROFS)
            {
                // Short of space, or a read-only subvolume (which the kernel lets nobody move into another directory,
                // though renaming it within its own, and exchanging its name with another's there, it does allow):
                // deleted where it is only where nobody but root and this user can rename names in its directory.
                ThrowUnlessOnlyOwnersRename(holder, path, errno == Errno.EROFS
                    ? "it is read-only, and the kernel lets nobody move a read-only subvolume into the directory where it would be deleted out of other users' reach. Make it writable first (btrfs property set PATH ro false) and run it again"
                    : $"there is no space to move it where it would be deleted out of other users' reach ({Errno.Name(errno)}). Free some space first", done, movable: errno != Errno.EROFS);
                Delete(id, path, byName: leaf == name && holder == parent.Handle ? leaf : null, done);
                return;
            }

            if (errno != 0)
            {
                throw FileOperationException.FromErrno(errno, "renameat2", path, "Cannot delete the subvolume", done.Count > 0 ? Deleted(done).Trim() : "Nothing was deleted.");
            }

            // From here on, whatever fails gives the name back first (what was moved is never left in the hidden
            // directory where it could be put back).
            bool settled = false;
            try
            {
                BtrfsRootRecord? held = null;
                using (SafeFileDescriptor? fd = Names.TryOpenDirectory(hold.Handle, leaf, noFollow: true, out _))
                {
                    if (fd is not null && FileStatus.Of(fd) is { Inode: BtrfsInspect.SubvolumeRootInode })
                    {
                        try
                        {
                            held = BtrfsSubvolumes.Info(fd, path);
                        }
                        catch (FileOperationException)
                        {
                            held = null;
                        }
                    }
                }

                // (A filesystem too old to keep subvolume UUIDs lists them as all zeros: the id alone then.)
                if (held is null || held.Id != id || (uuid != Guid.Empty && held.Uuid != uuid))
                {
                    string back = PutBack(hold, leaf, holder);
                    settled = true; // given back (or said where it is): nothing more to do below
                    throw new FileOperationException(
                        FileErrorKind.SubvolumeReplaced,
                        0,
                        "BTRFS_IOC_GET_SUBVOL_INFO",
                        path,
                        $"Cannot delete the subvolume '{path}': when its turn came, its name led to {(held is null ? "something that is not a subvolume" : $"another subvolume (id {held.Id})")} (renamed meanwhile), which was left alone{back}.{(done.Count > 0 ? Deleted(done) : " Nothing was deleted.")} See what is there now (Get-BtrfsSubvolume) and run it again.");
                }

                errno = BtrfsSubvolumes.TryDelete(hold.Handle, leaf);
                if (errno != 0)
                {
                    string back = PutBack(hold, leaf, holder);
                    settled = true;
                    FileOperationException refused = Refused(errno, path, done);
                    throw back.Length == 0 ? refused : new FileOperationException(refused.Kind, refused.Errno, refused.Operation, path, refused.Message + " It was moved to be deleted where nobody else can rename it" + back + ".", refused);
                }

                settled = true;
            }
            finally
            {
                if (!settled)
                {
                    _ = PutBack(hold, leaf, holder); // an unexpected failure (or Ctrl+C) between the move and the deletion
                }
            }
        }

        /// <summary>
        /// Before anything is made: a read-only subvolume (the one named, or a nested one) cannot be moved where it is
        /// deleted out of other users' reach, so it is refused here, with nothing changed (not even a directory made and
        /// removed again), where its directory lets others rename names.
        /// </summary>
        private void ThrowIfReadOnlyWhereOthersRename()
        {
            if (root is null)
            {
                return;
            }

            const string why = "it is read-only, and the kernel lets nobody move a read-only subvolume into the directory where it would be deleted out of other users' reach. Make it writable first (btrfs property set PATH ro false) and run it again";
            var none = new List<BtrfsSubvolumeInfo>();
            if (BtrfsSubvolumes.Info(root.Handle, Label).IsReadOnly)
            {
                ThrowUnlessOnlyOwnersRename(parent.Handle, Label, why, none, movable: false);
            }

            string top = (Subvolume.Path ?? root.Path).TrimEnd('/');
            foreach (BtrfsSubvolumeInfo n in Nested)
            {
                if (n.IsReadOnly && n.Path is string p && p.StartsWith(top + "/", StringComparison.Ordinal))
                {
                    string relative = p[(top.Length + 1)..];
                    int cut = relative.LastIndexOf('/');
                    using OpenFile? holder = cut < 0 ? null : SubvolumeLister.OpenBelow(root.Handle, top, relative[..cut]);
                    ThrowUnlessOnlyOwnersRename(holder?.Handle ?? root.Handle, p, why, none, movable: false);
                }
            }
        }

        /// <summary>
        /// Where a subvolume must be deleted where it is: refused (UnsafeDirectory, <paramref name="why"/>) unless only root
        /// and this user can change names in the directory holding it (its owner one of them, no write for group or
        /// others, which also bounds what an ACL grants), so nobody else can exchange its name with another's meanwhile.
        /// </summary>
        private static void ThrowUnlessOnlyOwnersRename(SafeFileDescriptor holder, string path, string why, List<BtrfsSubvolumeInfo> done, bool movable = true)
        {
            if (FileStatus.Of(holder) is FileStatus dir && (dir.Uid == 0 || dir.Uid == Metadata.FileSystemUserId) && (dir.Permissions & 0x12) == 0)
            {
                return;
            }

            string where = Names.PathOfDescriptor(holder) ?? "the directory holding it";
            throw new FileOperationException(
                FileErrorKind.UnsafeDirectory,
                0,
                "renameat2",
                path,
                $"Cannot delete the subvolume '{path}' safely: {why}. Deleted where it is, another user who can rename names in '{where}' could exchange its name with another subvolume's in the instant the kernel looks it up, and the kernel would delete that one.{(done.Count > 0 ? Deleted(done) : " Nothing was deleted.")} {(movable
                    ? "(Moving it into a directory only root can change, by hand, also lets it be deleted there.)"
                    : $"(Where only root and this user may change names in '{where}', owned by one of them with no write for group or others, it is deleted where it is.)")}");
        }

        /// <summary>The map of the filesystem's subvolumes to mounts that <see cref="DeleteByIdHeld"/> finds them by; null where it cannot be read (each is deleted by id then).</summary>
        private SubvolumeMap? IdMap()
        {
            try
            {
                return new SubvolumeMap(parent, MountTable.Read());
            }
            catch (FileOperationException)
            {
                return null;
            }
        }

        /// <summary>
        /// By id: a subvolume a mount reaches is deleted held, as <see cref="DeleteHeld"/> does, in a directory made beside
        /// it (a rename cannot cross mounts). Where it is comes from its back reference, read now (the listing gave it no
        /// path while its name was being renamed: a hostile review, where it was then deleted by id, which took the
        /// subvolume its name had been exchanged with): the directory that holds it, under a mount that reaches the
        /// subvolume holding that, and its name there. Deleted by id where no mount reaches that subvolume, or another
        /// filesystem or mount is over that directory (nobody can rename it through a path then), or the directory to
        /// hold it cannot be made for lack of space. A place that changes at every look (renamed again and again) is
        /// refused, never deleted by id.
        /// </summary>
        private void DeleteByIdHeld(SubvolumeMap map, ulong id, Guid uuid, string label, List<BtrfsSubvolumeInfo> done)
        {
            Guid? fileSystem = BtrfsSearch.FileSystemId(parent);
            bool settled = false, placed = false; // settled: by id for good; placed: its back reference was read
            for (int attempt = 0; attempt < 20 && !settled; attempt++)
            {
                if (attempt > 0)
                {
                    Thread.Sleep(attempt);
                }

                if (BtrfsInspect.BackrefOf(parent, id) is not RootBackref up)
                {
                    continue; // being renamed this instant (or deleted: by id below, which says so)
                }

                placed = true;
                int lookup = BtrfsInspect.TryLookup(parent.Handle, up.Parent, up.Directory, out _, out string inside);
                if (lookup == Errno.ENAMETOOLONG)
                {
                    // Not a rename: the same every time (before: "changed at every look", after 20 tries; a hostile test).
                    throw new FileOperationException(
                        FileErrorKind.InvalidArgument,
                        Errno.ENAMETOOLONG,
                        "BTRFS_IOC_INO_LOOKUP",
                        label,
                        $"Cannot delete {label}: the path of the directory holding it is longer than the kernel's lookup returns, and a subvolume is deleted here by its id, for which the kernel builds that path, no longer than that. Move it (mv) to a shorter path first, then delete it.{(done.Count == 0 ? " Nothing was deleted." : Deleted(done))}");
                }

                if (lookup is not (0 or Errno.EILSEQ))
                {
                    continue;
                }

                if (map.DirectoryOf(up.Parent) is not OpenFile top)
                {
                    // No mount here reaches the subvolume holding it. Deleted by id only where no mount anywhere reaches the
                    // directory holding it: another mount namespace's, or a bind mount of that directory (or of one above
                    // it) here, would let another user exchange its name with another subvolume's in the instant of the
                    // deletion, and the kernel deletes whatever the name holds then. (Before: deleted by id, which took the
                    // other subvolume 7 times in 20. A hostile test.)
                    if (map.PathOf(up.Parent) is not string holding)
                    {
                        continue;
                    }

                    ThrowIfReachedElsewhere(id, label, up.Parent, up.Directory, holding.TrimEnd('/') + "/" + inside.TrimEnd('/'), done);
                    settled = true;
                    break;
                }

                if (!up.NameIsUtf8 || lookup == Errno.EILSEQ)
                {
                    // Taken by its name in the directory holding it (held there, checked, deleted): a name that is not UTF-8
                    // cannot be given here, and a decoded one names another subvolume or nothing. (Before: "its name led to
                    // another subvolume (renamed meanwhile)", after advice to take it by -Id. A hostile test.) Where no
                    // mount reaches that directory (above), it is deleted by id, and no name is needed.
                    throw new FileOperationException(
                        FileErrorKind.NameNotUtf8,
                        Errno.EILSEQ,
                        "BTRFS_IOC_INO_LOOKUP",
                        label,
                        $"Cannot delete {label}: its name{(up.NameIsUtf8 ? ", or a directory's on the way to it," : string.Empty)} is not valid UTF-8, and it is deleted only by its name in the directory holding it (held and checked there first), which no path here can give. Rename it to UTF-8 first (mv with the shell's $'\\xNN' quoting), then delete it.{(done.Count == 0 ? " Nothing was deleted." : Deleted(done))}");
                }

                OpenFile holder;
                try
                {
                    holder = inside.Length == 0 ? OpenFile.Open(top.Path, OpenOptions.AllowDirectory) : OpenFile.Open(top.Path.TrimEnd('/') + "/" + inside.TrimEnd('/'), OpenOptions.AllowDirectory);
                }
                catch (FileOperationException)
                {
                    continue;
                }

                using (holder)
                {
                    if (holder.FileSystem.Kind != FileSystemKind.Btrfs || BtrfsSearch.FileSystemId(holder) != fileSystem || holder.Status.MountId != top.Status.MountId)
                    {
                        settled = true; // another filesystem or mount over the way: nobody reaches it through this path
                        break;
                    }

                    ulong tree;
                    try
                    {
                        tree = SubvolumeMap.SubvolumeIdOf(holder);
                    }
                    catch (FileOperationException)
                    {
                        continue;
                    }

                    if (holder.Status.Inode != up.Directory || tree != up.Parent)
                    {
                        continue; // renamed meanwhile
                    }

                    StagingDirectory? hold;
                    try
                    {
                        hold = Hold(holder, up.Name, label);
                    }
                    catch (FileOperationException ex) when (done.Count > 0)
                    {
                        throw new FileOperationException(ex.Kind, ex.Errno, ex.Operation, label, ex.Message.Replace(" Nothing was deleted.", Deleted(done), StringComparison.Ordinal), ex);
                    }

                    if (hold is null)
                    {
                        settled = true; // no space for it
                        break;
                    }

                    using (hold)
                    {
                        DeleteHeld(hold, holder.Handle, up.Name, id, uuid, label, done);
                    }

                    return;
                }
            }

            if (!settled && placed)
            {
                throw new FileOperationException(
                    FileErrorKind.SubvolumeReplaced,
                    0,
                    "BTRFS_IOC_INO_LOOKUP",
                    label,
                    $"Cannot delete the subvolume '{label}': where it is changed at every look (renamed again and again) while it was to be deleted, so it could not be held where nobody else can rename it.{(done.Count > 0 ? Deleted(done) : " Nothing was deleted.")} Run it again when it is left alone.");
            }

            Delete(id, label, byName: null, done);
        }

        /// <summary>
        /// Refuses to delete subvolume <paramref name="id"/> by its id (its name looked up by the kernel when its turn comes)
        /// where a mount reaches the directory holding it (<paramref name="directory"/>, from the top level): one of this mount
        /// namespace (a bind mount of that directory or of one above it, not of the subvolume holding it) or of another.
        /// Through it a user who may write in that directory could exchange the subvolume's name with another's in between.
        /// Where another mount namespace cannot be read, refused too unless -AssumeNotInUse.
        /// </summary>
        private void ThrowIfReachedElsewhere(ulong id, string label, ulong tree, ulong directoryInode, string directory, List<BtrfsSubvolumeInfo> done)
        {
            // Only root and this user can rename names there (the directory theirs, no write for group or others, which
            // also shows an ACL's): nobody else can exchange them, whatever reaches it (a review: refused all the same).
            if (BtrfsInspect.OwnerAndModeOf(parent, tree, directoryInode) is (uint owner, uint mode)
                && (owner == 0 || owner == Metadata.FileSystemUserId)
                && (mode & 0x12) == 0)
            {
                return;
            }

            string dir = directory.Length > 1 ? directory.TrimEnd('/') : "/";
            MountTable here = MountTable.Read();
            if (here.For(parent) is not MountEntry fileSystem)
            {
                return;
            }

            string? reason = null;
            if (here.Reaching(fileSystem.Major, fileSystem.Minor, dir) is string at)
            {
                reason = $"'{at}' here reaches the directory holding it ('{dir}' from the top level of the filesystem). Delete it by its path under '{at}' instead";
            }
            else
            {
                foreach ((string name, _, MountTable table, _) in otherNamespaces ??= MountTable.OtherNamespaces(out unreadableNamespaces))
                {
                    if (table.Reaching(fileSystem.Major, fileSystem.Minor, dir) is string there)
                    {
                        reason = $"in another mount namespace ({name}), '{there}' reaches the directory holding it ('{dir}' from the top level of the filesystem). Delete it from there (nsenter --mount=/proc/PID/ns/mnt), or mount the filesystem's top level here (mount -o subvolid=5) and delete it by its path";
                        break;
                    }
                }

                if (reason is null && unreadableNamespaces is { Count: > 0 } unreadable && !AssumeNotInUse)
                {
                    reason = $"it cannot be proven that no mount in another mount namespace reaches the directory holding it: {string.Join("; ", unreadable)}, so that namespace could not be read. Add -AssumeNotInUse if you know that no mount there reaches it";
                }
            }

            if (reason is not null)
            {
                throw new FileOperationException(
                    FileErrorKind.UnsafeDirectory,
                    0,
                    "BTRFS_IOC_SNAP_DESTROY_V2",
                    label,
                    $"Cannot delete the subvolume '{label}' (id {id}) by its id: no mount of this process reaches it, and the kernel would delete whatever its name holds in the instant of the deletion, but {reason}: there another user who may write in that directory could give its name to another subvolume in between.{(done.Count > 0 ? Deleted(done) : " Nothing was deleted.")}");
            }
        }

        /// <summary>Other mount namespaces' tables, read once per run where a subvolume is deleted by id (<see cref="ThrowIfReachedElsewhere"/>).</summary>
        private List<ForeignMountTable>? otherNamespaces;

        /// <summary>The namespaces <see cref="otherNamespaces"/> could not read.</summary>
        private List<string>? unreadableNamespaces;

        /// <summary>Gives what <see cref="DeleteHeld"/> moved its name back: "" when it has it, else where it is now.</summary>
        private static string PutBack(StagingDirectory hold, string leaf, SafeFileDescriptor holder) =>
            Names.TryMoveNoReplace(hold.Handle, leaf, holder, leaf) is int errno and not 0
                ? $", but it could not be given its name back ({(errno == Errno.EEXIST ? "taken meanwhile" : Errno.Name(errno))}), so it is '{hold.HiddenPath}/{leaf}' now: move it back by hand"
                : string.Empty;

        private void Delete(ulong id, string path, string? byName, List<BtrfsSubvolumeInfo> done)
        {
            int errno = BtrfsSubvolumes.TryDeleteById(parent.Handle, id);
            if (errno is Errno.EPERM or Errno.EACCES or Errno.EOPNOTSUPP && byName is not null && root is not null && !Privileged)
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

            throw Refused(errno, path, done);
        }

        /// <summary>The kernel's refusal <paramref name="errno"/> of deleting the subvolume <paramref name="path"/>, after <paramref name="done"/> went.</summary>
        private FileOperationException Refused(int errno, string path, List<BtrfsSubvolumeInfo> done)
        {
            string what = $"Cannot delete the subvolume '{path}'";
            string after = Deleted(done);
            return errno switch
            {
                // As root, the kernel's EPERM is about use: the default subvolume, an active swapfile, a btrfs send reading it.
                Errno.EPERM when Privileged => InUse(path, $"the kernel refuses it ({Errno.Name(errno)}): it is the default subvolume, holds an active swapfile, or a btrfs send is reading it", after),
                Errno.EPERM or Errno.EACCES => new FileOperationException(FileErrorKind.AccessDenied, errno, "BTRFS_IOC_SNAP_DESTROY_V2", path, $"{what}: the kernel refuses it ({Errno.Name(errno)}). Deleting a subvolume needs root, or the user_subvol_rm_allowed mount option and write permission on it and its parent; the kernel also refuses the default subvolume and one holding an active swapfile (an empty subvolume can be removed with rmdir).{(after.Length > 0 ? after : " Nothing was deleted.")}"),
                Errno.EBUSY or Errno.ETXTBSY => InUse(path, $"the kernel says it is in use ({Errno.Name(errno)}: mounted, or an active swapfile)", after),
                Errno.ENOTEMPTY => new FileOperationException(FileErrorKind.SubvolumeHasNested, errno, "BTRFS_IOC_SNAP_DESTROY_V2", path, $"{what}: a nested subvolume is in it that was not when the deletion was planned (made or moved in meanwhile); it was left alone. See what it is (Get-BtrfsSubvolume '{path}' -Recurse) before deleting again: -Recurse would delete it too.{after}"),
                _ => FileOperationException.FromErrno(errno, "BTRFS_IOC_SNAP_DESTROY_V2", path, "Cannot delete the subvolume", after.Length > 0 ? after.Trim() : "Nothing was deleted."),
            };
        }

        /// <summary>
        /// A subvolume deleted by its name in the directory holding it (where a mount reaches that directory) whose name, or
        /// a directory's on the way, is not UTF-8: refused when planned, so -WhatIf says what the run would (a hostile test:
        /// "What if: Delete" for a deletion the run then refused as NameNotUtf8).
        /// </summary>
        private static void ThrowIfNotNameable(OpenFile fs, MountTable mounts, ulong id, IEnumerable<BtrfsSubvolumeInfo> subvolumes, string where, string named)
        {
            using var map = new SubvolumeMap(fs, mounts);
            foreach (BtrfsSubvolumeInfo s in subvolumes)
            {
                if (BtrfsInspect.BackrefOf(fs, s.Id) is RootBackref up
                    && (!up.NameIsUtf8 || BtrfsInspect.TryLookup(fs.Handle, up.Parent, up.Directory, out _, out _) == Errno.EILSEQ)
                    && map.DirectoryOf(up.Parent) is not null)
                {
                    throw new FileOperationException(
                        FileErrorKind.NameNotUtf8,
                        Errno.EILSEQ,
                        "BTRFS_IOC_INO_LOOKUP",
                        where,
                        $"Cannot delete {named}: {(s.Id == id ? "its" : $"the name of the subvolume '{s.TopLevelPath ?? s.Name}' (id {s.Id}) inside it")} name, or a directory's on the way to it, is not valid UTF-8, and a subvolume a mount reaches is deleted only by its name in the directory holding it (held and checked there first), which no path here can give. Rename it to UTF-8 first (mv with the shell's $'\\xNN' quoting), then delete it. Nothing was deleted.");
                }
            }
        }

        /// <summary>What was deleted already when a later step fails ("" when nothing was).</summary>
        private static string Deleted(List<BtrfsSubvolumeInfo> done) =>
            done.Count == 0 ? string.Empty : $" Deleted before this: {string.Join(", ", done.ConvertAll(d => d.Path ?? d.TopLevelPath ?? d.Name))}.";

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
                    // SUBVOL_SYNC_WAIT sleeps in the kernel until the cleaner is done, which a file still open in
                    // the subvolume puts off for as long as it stays open: waited for on a thread of its own, so
                    // Ctrl+C stops the wait, and interrupted then (else the thread stayed in the kernel, and the
                    // filesystem busy, until the file was closed).
                    // It does not commit, and the cleaner it waits for is woken by a commit: without one (BTRFS_IOC_SYNC
                    // needs no privilege) it waited for the periodic commit, 30 s, where 1.2 s was enough. After 1 s, then
                    // 2 s, 4 s and every 5 s, as above (a commit flushes the whole filesystem, and the wait lasts as long as
                    // a file stays open in the subvolume).
                    // The kernel's wait also ends with EINTR without Ctrl+C (the process stopped and continued, a
                    // debugger attached, a signal for that thread): it is begun again then.
                    var poked = System.Diagnostics.Stopwatch.StartNew();
                    var pause = TimeSpan.FromSeconds(1);
                    int errno;
                    do
                    {
                        var waiting = InterruptibleCall.Start(() => BtrfsSubvolumes.TryWaitCleaned(parent.Handle, id), "Btrfs subvolume sync wait");
                        while (!waiting.Wait(TimeSpan.FromMilliseconds(200)))
                        {
                            if (cancel.IsCancellationRequested)
                            {
                                _ = waiting.Interrupt(TimeSpan.FromSeconds(2));
                                cancel.ThrowIfCancellationRequested();
                            }

                            if (poked.Elapsed > pause)
                            {
                                _ = BtrfsSubvolumes.TryCommitAndClean(parent.Handle);
                                poked.Restart();
                                pause = TimeSpan.FromSeconds(Math.Min(pause.TotalSeconds * 2, 5));
                            }
                        }

                        errno = waiting.Result;
                        cancel.ThrowIfCancellationRequested();
                    }
                    while (errno == Errno.EINTR);

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
        private static string? MountedInside(MountTable mounts, string full)
        {
            foreach (MountEntry m in mounts.Entries)
            {
                if (m.MountPoint == full || m.MountPoint.StartsWith(full + "/", StringComparison.Ordinal))
                {
                    return m.MountPoint;
                }
            }

            return null;
        }

        private static FileOperationException NotASubvolume(string path, string why, string? named = null) => new(
            FileErrorKind.NotASubvolume,
            Errno.EINVAL,
            "statx",
            path,
            $"Cannot delete {named ?? $"the subvolume '{path}'"}: {why}. Nothing was deleted; use Get-BtrfsSubvolume to find subvolumes.");

        private static FileOperationException InUse(string path, string why, string after = "", string? named = null) => new(
            FileErrorKind.SubvolumeInUse,
            Errno.EBUSY,
            "SNAP_DESTROY",
            path,
            $"Cannot delete {named ?? $"the subvolume '{path}'"}: {why}.{(after.Length > 0 ? after : " Nothing was deleted.")}");

        internal static string Describe(BtrfsSubvolumeInfo s, int nested)
        {
            string which = s.Path ?? (s.TopLevelPath is string top ? top + $" (from the filesystem's top level; {BtrfsSubvolumeInfo.WhyNoPath(top)})" : s.Name);
            return nested == 0
                ? string.Format(CultureInfo.InvariantCulture, "Delete subvolume {0} (id {1})", which, s.Id)
                : string.Format(CultureInfo.InvariantCulture, "Delete subvolume {0} (id {1}) and the {2} nested subvolume(s) in it", which, s.Id, nested);
        }
    }
}

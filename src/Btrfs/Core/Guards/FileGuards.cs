namespace Btrfs.Core
{
    using System;
    using System.Collections.Generic;
    using System.Globalization;
    using System.IO;
    using System.Linq;
    using Btrfs.Interop;
    using Btrfs.Kernel;

    /// <summary>
    /// The checks every cmdlet that changes a file makes before it starts: who else uses the file
    /// (/proc/*/fd and /proc/*/maps), whether it is an active swapfile (/proc/swaps), whether it is
    /// immutable or append-only, on a read-only mount or in a read-only btrfs snapshot.
    /// </summary>
    internal static class FileGuards
    {
        /// <summary>"change the NOCOW attribute of {0}" with the quoted path in place of {0} (appended when absent).</summary>
        internal static string Phrase(string what, string path) =>
            what.Contains("{0}", StringComparison.Ordinal) ? what.Replace("{0}", $"'{path}'", StringComparison.Ordinal) : $"{what} '{path}'";

        /// <summary>
        /// Refuses a destination that is the source itself (by device and inode, so another name or a
        /// link to it counts): "Cannot <paramref name="what"/> ('dest' is the same file)". Dedupe and
        /// reflink ask this before anything is planned or shown by -WhatIf.
        /// </summary>
        internal static void RefuseSameFile(OpenFile source, FileStatus? destination, string destinationPath, string what)
        {
            if (destination is FileStatus st && st.SameInode(source.Status))
            {
                throw new FileOperationException(
                    FileErrorKind.SameFile,
                    Errno.EINVAL,
                    "stat",
                    destinationPath,
                    $"Cannot {Phrase(what, source.Path)} ('{destinationPath}' is the same file). Give another destination.");
            }
        }

        /// <summary>Refuses immutable and append-only files, read-only mounts and read-only snapshots, and active swapfiles.</summary>
        internal static void ThrowIfUnchangeable(OpenFile file, InodeFlags flags, string what, bool walkedItem = false)
        {
            // btrfs answers every attribute change there with ENOTTY (before: that raw errno, after -WhatIf had promised
            // the change; a hostile test).
            if (BtrfsOnly.IsPlaceholder(file.Status, file.FileSystem.Kind))
            {
                throw BtrfsOnly.PlaceholderRefusal(file, Phrase(what, file.Path));
            }

            if ((flags & InodeFlags.Immutable) != 0)
            {
                throw new FileOperationException(
                    FileErrorKind.Immutable,
                    Errno.EPERM,
                    "FS_IOC_GETFLAGS",
                    file.Path,
                    $"Cannot {Phrase(what, file.Path)}: it is immutable (chattr +i), so it was left exactly as it is. If the change is intended, clear the attribute first (chattr -i, as root).");
            }

            if ((flags & InodeFlags.AppendOnly) != 0)
            {
                throw new FileOperationException(
                    FileErrorKind.AppendOnly,
                    Errno.EPERM,
                    "FS_IOC_GETFLAGS",
                    file.Path,
                    $"Cannot {Phrase(what, file.Path)}: it is append-only (chattr +a), so it was left exactly as it is. If the change is intended, clear the attribute first (chattr -a, as root).");
            }

            ThrowIfReadOnly(file, what, walkedItem);
            ThrowIfSwapfile(file, what);
        }

        /// <summary>
        /// Refuses to put a new file in place of <paramref name="file"/> (opened relative to its directory) where that
        /// directory is immutable or append-only: the kernel renames and removes nothing there, not even for root
        /// (EPERM), so the whole copy would be made, then refused, and its temporary file could not be removed.
        /// Asked before anything is written (also by -WhatIf). A directory that was only named (O_PATH) is not read.
        /// </summary>
        internal static void ThrowIfDirectoryKeepsItsNames(OpenFile file, string what)
        {
            if (file.Directory is not SafeFileDescriptor dir)
            {
                return;
            }

            string dirPath = System.IO.Path.GetDirectoryName(System.IO.Path.GetFullPath(file.Path)) ?? "/";

            // A sticky directory (as /tmp): the kernel renames over a name there only for the owner of the file or of the
            // directory, or root (EPERM). Before: a user who may write another user's file there had it marked, copied
            // (or a swapfile's space allocated) and refused at the exchange, with its change time moved.
            if (FileStatus.Of(dir) is FileStatus d && StickyForbids(d, file.Status))
            {
                throw new FileOperationException(
                    FileErrorKind.AccessDenied,
                    Errno.EPERM,
                    "renameat2",
                    file.Path,
                    $"Cannot {Phrase(what, file.Path)}: its directory '{dirPath}' has the sticky bit (as /tmp has), where the kernel lets only the file's owner, the directory's owner or root put another file in its place, and this user is none of them. Nothing was changed. Run as the file's owner (or as root).");
            }

            // The new copy is made in the directory and put in the file's place there: a user who may not write in it was
            // refused only when the copy was to be made, and -WhatIf said what it would cost (a hostile test). A permission
            // lacking only (EACCES): an immutable or append-only directory (EPERM) is said as such below, one this user
            // may only search (named only) by SafeRewrite.ThrowIfDirectoryNamedOnly.
            if (!DirectoryHandle.IsNamedOnly(dir) && Files.WriteAndSearchRefusal(dir, ".") == Errno.EACCES)
            {
                FileStatus? ds = FileStatus.Of(dir);
                string whose = ds is FileStatus o ? $" (its owner is uid {o.Uid}, mode {Convert.ToString(o.Permissions & 0xFFF, 8)})" : string.Empty;
                throw new FileOperationException(
                    FileErrorKind.AccessDenied,
                    Errno.EACCES,
                    "faccessat",
                    file.Path,
                    $"Cannot {Phrase(what, file.Path)}: this user may not write in its directory '{dirPath}'{whose}, where its replacement is made and put in its place. Nothing was changed. Run as a user who may write there (or as root).");
            }

            InodeFlags flags;
            try
            {
                flags = InodeAttributes.Get(dir, dirPath);
            }
            catch (FileOperationException)
            {
                return; // named only (EBADF): refused as such by the rewrite; otherwise the kernel says it at the rename
            }

            bool immutable = (flags & InodeFlags.Immutable) != 0;
            if (immutable || (flags & InodeFlags.AppendOnly) != 0)
            {
                throw new FileOperationException(
                    immutable ? FileErrorKind.Immutable : FileErrorKind.AppendOnly,
                    Errno.EPERM,
                    "FS_IOC_GETFLAGS",
                    file.Path,
                    $"Cannot {Phrase(what, file.Path)}: its directory '{dirPath}' is {(immutable ? "immutable (chattr +i)" : "append-only (chattr +a)")}, where the kernel lets no name be replaced or removed, not even for root, and this puts a new file in its place. Nothing was changed. Clear the attribute of the directory first (chattr {(immutable ? "-i" : "-a")}, as root) if the change is intended.");
            }
        }

        /// <summary>S_ISVTX: in such a directory only the owner of an entry or of the directory (or CAP_FOWNER) may remove or replace the entry.</summary>
        internal const int StickyBit = 0x200;

        /// <summary>
        /// Whether this user may change the file's attributes (chattr: FS_IOC_SETFLAGS): its owner, or a holder of CAP_FOWNER
        /// that counts for it (its owner and group mapped in this user namespace). Where the credentials cannot be read, by
        /// the filesystem user id and CAP_FOWNER alone.
        /// </summary>
        internal static bool MayChangeAttributes(in FileStatus file) =>
            file.Uid == Metadata.FileSystemUserId
            || (Processes.Current() is Processes.Credentials me
                ? file.Uid == me.FsUid || me.Has(Processes.Credentials.Fowner, file.Uid, file.Gid)
                : Processes.HasFowner());

        /// <summary>
        /// Whether the sticky bit of directory <paramref name="dir"/> keeps this user from removing or replacing the entry
        /// <paramref name="entry"/> (null: gone meanwhile) (the kernel's check_sticky: allowed to the entry's owner, the
        /// directory's owner, and a holder of CAP_FOWNER that counts for the entry: its owner and group mapped in this
        /// user namespace, as a rootless container's root often has not). Where the credentials cannot be read, by
        /// the filesystem user id and CAP_FOWNER alone.
        /// </summary>
        internal static bool StickyForbids(in FileStatus dir, FileStatus? entry)
        {
            if ((dir.Mode & StickyBit) == 0)
            {
                return false;
            }

            if (Processes.Current() is not Processes.Credentials me)
            {
                uint fsuid = Metadata.FileSystemUserId;
                return dir.Uid != fsuid && entry?.Uid != fsuid && !Processes.HasFowner();
            }

            if (dir.Uid == me.FsUid || entry?.Uid == me.FsUid)
            {
                return false;
            }

            return entry is FileStatus e
                ? !me.Has(Processes.Credentials.Fowner, e.Uid, e.Gid)
                : (me.Effective & (1UL << Processes.Credentials.Fowner)) == 0;
        }

        /// <summary>
        /// Refuses an active swapfile (listed in /proc/swaps, or in <paramref name="swaps"/> read already), with this module's
        /// message rather than the kernel's ETXTBSY. One switched on through a mount that is gone (its listed path leads
        /// elsewhere) is found where its lease is refused (<see cref="ThrowUnleased"/>): asking the kernel here, for every
        /// file, left a process that met a frozen filesystem unable to exit until the thaw (a hostile test).
        /// </summary>
        internal static void ThrowIfSwapfile(OpenFile file, string what, SwapTable? swaps = null)
        {
            if (!file.IsDirectory && (swaps ?? SwapTable.Read()).Contains(file.Status))
            {
                throw ActiveSwapfile(file.Path, $"Cannot {Phrase(what, file.Path)}");
            }
        }

        /// <summary>The refusal of an active swapfile: "<paramref name="cannot"/>: it is an active swapfile ...".</summary>
        internal static FileOperationException ActiveSwapfile(string path, string cannot) => new(
            FileErrorKind.ActiveSwapfile,
            Errno.ETXTBSY,
            "/proc/swaps",
            path,
            $"{cannot}: it is an active swapfile (swap is on in it: see swapon --show). Run swapoff on it first; an active swapfile is never replaced, changed, cloned or deduplicated.");

        /// <summary>Refuses a file on a read-only mount: the kernel changes nothing there, not even its extents' sharing, for root too.</summary>
        internal static void ThrowIfReadOnlyMount(OpenFile file, string what)
        {
            if (file.IsReadOnlyMount)
            {
                throw new FileOperationException(
                    FileErrorKind.ReadOnlyFileSystem,
                    Errno.EROFS,
                    "statfs",
                    file.Path,
                    $"Cannot {Phrase(what, file.Path)}: its filesystem is mounted read-only. Remount it read-write first if the change is intended.");
            }
        }

        /// <summary>
        /// Refuses files on a read-only mount or in a read-only btrfs snapshot or subvolume. For the item a walk found
        /// (<paramref name="walkedItem"/>), a read-only snapshot is every other item's refusal too (a walk stays in its
        /// subvolume): said once for the tree. Not for a destination (New-BtrfsReflink's), which may lie elsewhere.
        /// </summary>
        internal static void ThrowIfReadOnly(OpenFile file, string what, bool walkedItem = false)
        {
            ThrowIfReadOnlyMount(file, what);
            if (file.FileSystem.Kind == FileSystemKind.Btrfs && BtrfsSubvolume.Of(file) is { IsReadOnly: true } sv)
            {
                throw new FileOperationException(
                    FileErrorKind.ReadOnlySnapshot,
                    Errno.EROFS,
                    "BTRFS_IOC_GET_SUBVOL_INFO",
                    file.Path,
                    $"Cannot {Phrase(what, file.Path)}: it is in the read-only btrfs snapshot or subvolume '{sv.Name}' (id {sv.Id}). Snapshots are meant to stay as they were taken; change the file in the writable subvolume instead.")
                {
                    SameForFileSystem = walkedItem,
                };
            }
        }

        /// <summary>
        /// Refuses a file another process has open or mapped, proven by the kernel: a write lease is
        /// taken and released at once (<see cref="WriteLease"/>: granted only while no other open file
        /// description or mapping exists, whoever holds it). The /proc scan names the holders. Where no
        /// lease can be had (not the owner, leases disabled), the /proc scan decides only when
        /// <paramref name="assumeNotInUse"/> is given; otherwise the file is refused as unprovable.
        /// The change itself then holds a lease through the swap (<see cref="TemporaryFile.Replace"/>).
        /// Bind mounts of it are looked for first (<see cref="ThrowIfMounted"/>) unless <paramref name="mounts"/>
        /// is false (the caller's exchange looks for them, and nothing is written before that).
        /// </summary>
        internal static void ThrowIfInUse(OpenFile file, string what, bool assumeNotInUse, bool mounts = true)
        {
            if (mounts)
            {
                ThrowIfMounted(file, what, assumeNotInUse);
            }

            using WriteLease? lease = WriteLease.TryTake(file.Handle, out LeaseOutcome outcome, out int errno);
            if (lease is null)
            {
                ThrowUnleased(file, what, outcome, errno, assumeNotInUse);
            }
        }

        /// <summary>
        /// No lease was granted: refuses with the holders the /proc scan can name (FileInUse), or when
        /// the kernel said it is in use but no holder is visible to this user, or, when no lease could be
        /// asked for at all, unless <paramref name="assumeNotInUse"/> (InUseUnknown). Returns only when
        /// the caller may go on without a lease.
        /// </summary>
        internal static void ThrowUnleased(OpenFile file, string what, LeaseOutcome outcome, int errno, bool assumeNotInUse)
        {
            List<FileUser> users = FindUsers(file);
            if (users.Count == 0 && outcome == LeaseOutcome.InUse && !file.IsDirectory && SwapTable.Read().HoldsActive(file))
            {
                // In use, and nobody seen holding it: an active swapfile switched on through a mount that is gone, whose
                // path in /proc/swaps leads elsewhere, is said to be one (before: "a process had it open for a moment").
                // Asked only here, where the answer is needed: the kernel's answer waits while the filesystem is frozen.
                throw ActiveSwapfile(file.Path, $"Cannot {Phrase(what, file.Path)}");
            }

            if (users.Count > 0 || outcome == LeaseOutcome.InUse)
            {
                throw InUse(file, what, users);
            }

            if (assumeNotInUse)
            {
                return;
            }

            string me = "uid " + Metadata.FileSystemUserId.ToString(CultureInfo.InvariantCulture);
            string why = outcome == LeaseOutcome.NotOwner
                ? $"the kernel proves that with a write lease, which it grants only to the file's owner (uid {file.Status.Uid.ToString(CultureInfo.InvariantCulture)}) or to root, and this process runs as {me}; other users' processes are invisible to it in /proc"
                : Metadata.FileSystemUserId == 0
                    ? $"the kernel refused a write lease ({Errno.Name(errno)}: leases are switched off with sysctl fs.leases-enable=0, or this filesystem has none), and the /proc scan alone sees neither what the kernel holds open (a loop device, an NFS export) nor a process that opens the file during the swap"
                    : $"the kernel refused a write lease ({Errno.Name(errno)}: leases are switched off with sysctl fs.leases-enable=0, or this filesystem has none), and the /proc scan alone cannot see other users' processes";
            throw new FileOperationException(
                FileErrorKind.InUseUnknown,
                errno,
                "fcntl(F_SETLEASE)",
                file.Path,
                $"Cannot {Phrase(what, file.Path)}: it cannot be proven that no other process has it open: {why}. A process that kept it open would go on writing to the old file and its writes would be lost. Run as the file's owner or as root{(outcome == LeaseOutcome.NotOwner ? string.Empty : " with leases enabled")}, or add -AssumeNotInUse if you know that nothing (no VM, no database) uses it. Nothing was changed.");
        }

        /// <summary>
        /// Refuses a file that is bind-mounted somewhere (a mount whose root is this very file: a VM image
        /// handed to a container, in this or any other mount namespace this process can read; as root every
        /// one). A mount holds no open file, so no lease shows it, and a replaced file would stay on under
        /// the mount: whoever uses it there would go on with the old file, apart from its name.
        /// </summary>
        internal static void ThrowIfMounted(OpenFile file, string what, bool assumeNotInUse)
        {
            if (MountTable.Current().For(file) is not MountEntry own)
            {
                return;
            }

            // The file's path from the top of its filesystem (as a bind mount's root field shows it): the
            // kernel's path of the open file, through the mount it was opened on.
            string? fromTop = null;
            if (Names.NamedPathOfDescriptor(file.Handle) is string seen
                && (own.MountPoint == "/" || seen.StartsWith(own.MountPoint + "/", StringComparison.Ordinal)))
            {
                fromTop = own.Root.TrimEnd('/') + (own.MountPoint == "/" ? seen : seen[own.MountPoint.Length..]);
            }

            string name = file.Name.Length > 0 ? file.Name : System.IO.Path.GetFileName(file.Path);
            var namespaces = AllNamespaces(out List<string> unreadable);
            foreach ((string? prefix, string where, MountTable table, _) in namespaces)
            {
                // The file's own path unknown (the kernel shows no path longer than a page): a mount there on a name like its
                // own, or of a file like it, cannot be told from one on it, so it is not proven free (a hostile test: at 4,448
                // bytes, a bind mount onto the file in another namespace was dropped without a word).
                if (fromTop is null && table.Entries.FirstOrDefault(e => (e.Major == own.Major && e.Minor == own.Minor && e.Root.EndsWith("/" + name, StringComparison.Ordinal))
                    || (e.MountPoint.EndsWith("/" + name, StringComparison.Ordinal) && table.ById(e.ParentId) is { } p && p.Major == own.Major && p.Minor == own.Minor)) is MountEntry alike)
                {
                    unreadable.Add($"'{alike.MountPoint}'{where}, a mount that may be on or of this file: its path here is longer than the kernel shows (a page), so the two cannot be compared");
                    continue;
                }

                // Something mounted on the file's name there: the exchange moves the name from under it, and the kernel drops
                // that mount (in this namespace the exchange itself is refused, EBUSY). Found from the table alone (the mount
                // it was made in), also where a later mount covers the directory. Before: a container's bind mount onto the
                // file vanished (a hostile test).
                if (fromTop is not null && table.MountedOn(own.Major, own.Minor, fromTop) is MountEntry on)
                {
                    throw new FileOperationException(
                        FileErrorKind.InUse,
                        Errno.EBUSY,
                        "mountinfo",
                        file.Path,
                        $"Cannot {Phrase(what, file.Path)}: something is mounted on its name, at '{on.MountPoint}'{where}. The replacement would take the name from under that mount, and the kernel would drop the mount there. Unmount it there first; -Force does not override this. Nothing was changed.");
                }

                // Only mounts of this filesystem whose root is not its top: a file's bind mount is one.
                var candidates = table.Entries.Where(e => e.Major == own.Major && e.Minor == own.Minor && e.Root != "/" && !e.Root.EndsWith("//deleted", StringComparison.Ordinal)).ToList();

                // By its root (also when another mount covers its mount point), or by what its mount point
                // shows (a bind mount of another hard link of the file), looked up bounded in time.
                Dictionary<string, FileStatus?>? shown = prefix is null ? new Dictionary<string, FileStatus?>() : Bounded.Statuses(candidates.ConvertAll(e => prefix + e.MountPoint), followLinks: false, TimeSpan.FromSeconds(10));
                if (shown is null)
                {
                    unreadable.Add($"the mount points{where}, which did not answer within 10 s");
                    shown = new Dictionary<string, FileStatus?>();
                }

                foreach (MountEntry e in candidates)
                {
                    if (e.Root == fromTop || (shown.GetValueOrDefault(prefix + e.MountPoint) is FileStatus mounted && mounted.SameInode(file.Status)))
                    {
                        throw new FileOperationException(
                            FileErrorKind.InUse,
                            Errno.EBUSY,
                            "mountinfo",
                            file.Path,
                            $"Cannot {Phrase(what, file.Path)}: it is mounted at '{e.MountPoint}'{where} (a bind mount of the file). Whoever uses it there would go on with the old file, and what they wrote would be lost to this name. Unmount it there first; -Force does not override this. Nothing was changed.");
                    }
                }
            }

            if (unreadable.Count > 0 && !assumeNotInUse)
            {
                throw new FileOperationException(
                    FileErrorKind.InUseUnknown,
                    0,
                    "mountinfo",
                    file.Path,
                    $"Cannot {Phrase(what, file.Path)}: it cannot be proven that it is not mounted elsewhere: {string.Join("; ", unreadable)}. Add -AssumeNotInUse if you know that nothing mounts it there. Nothing was changed.");
            }
        }
        /// <summary>
        /// What the kernel itself holds on the devices given (a subvolume's files have a device of their own), said
        /// for a refusal, or null: a loop device backed by a file there, an overlay mount (in any mount namespace
        /// this process can read) whose upper, work or lower directory is there, a directory the NFS server
        /// exports from there. None of them holds a descriptor a process shows. With <paramref name="findLost"/>
        /// (a subvolume no mount reaches), an overlay layer of this mount namespace or an export whose path no
        /// longer exists (ENOENT: its mount taken away with umount -l, which the kernel's user outlives) could be
        /// anywhere, also there: each is said in <paramref name="lost"/>. (Another namespace's layers are looked up
        /// through its process's root, where a container's own root overlay names host paths: not counted.)
        /// </summary>
        internal static string? KernelUseInside(IReadOnlySet<(uint Major, uint Minor)> devices, bool findLost, out List<string> unreadable, out List<string> lost)
        {
            unreadable = new List<string>();
            lost = new List<string>();
            // A backing file on a network or FUSE filesystem is in no btrfs subvolume, and asking about it (the kernel
            // stats it) would wait for a server that may no longer answer: not asked.
            MountTable here = MountTable.Current();
            foreach ((string device, string backing, uint? major, uint? minor, _) in LoopDevices.Bound(path => here.Covering(path) is { } m && MountTable.IsRemote(m.FileSystemType)))
            {
                if (major is uint ma && minor is uint mi && devices.Contains((ma, mi)))
                {
                    return $"the loop device {device} is backed by '{backing}' in it (losetup -d {device} after unmounting what is on it)";
                }
            }

            var namespaces = AllNamespaces(out List<string> notRead);
            unreadable = notRead;
            foreach ((string? prefix, string where, MountTable table, IReadOnlyDictionary<string, FileStatus?>? resolved) in namespaces)
            {
                var layers = table.Entries.SelectMany(e => e.OverlayLayers()).Where(l => l.StartsWith('/')).Distinct(StringComparer.Ordinal).ToList();
                Dictionary<string, FileStatus?>? statuses = prefix is null ? null : Bounded.Statuses(layers.ConvertAll(l => prefix + l), followLinks: true, TimeSpan.FromSeconds(10));
                if (prefix is not null && statuses is null)
                {
                    notRead.Add($"the overlay layers{where}, which did not answer within 10 s");
                }

                foreach (MountEntry e in table.Entries)
                {
                    foreach (string layer in e.OverlayLayers().Where(l => l.StartsWith('/')))
                    {
                        // Looked up through the namespace's process (bounded), or as it was looked up from inside it.
                        FileStatus? layerStatus = prefix is not null ? statuses?.GetValueOrDefault(prefix + layer) : resolved?.GetValueOrDefault(layer);
                        if (layerStatus is FileStatus st && devices.Contains((st.DevMajor, st.DevMinor)))
                        {
                            return $"the overlay mounted at '{e.MountPoint}'{where} has its layer '{layer}' in it (unmount the overlay first)";
                        }

                        if (findLost && layerStatus is null && prefix is { Length: 0 } && statuses is not null && Gone(layer))
                        {
                            lost.Add($"the overlay mounted at '{e.MountPoint}' has its layer at '{layer}', which leads nowhere now");
                        }
                    }
                }
            }

            var exports = new List<string>();
            try
            {
                foreach (string line in File.ReadLines("/proc/fs/nfs/exports"))
                {
                    string exported = line.Split('\t', ' ')[0];
                    if (exported.Length > 0 && exported[0] == '/')
                    {
                        exports.Add(MountTable.Unescape(exported));
                    }
                }
            }
            catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
            {
                // No NFS server here.
            }

            // Bounded: an exported path may lead through a mount that no longer answers.
            Dictionary<string, FileStatus?>? exportStatus = Bounded.Statuses(exports, followLinks: true, TimeSpan.FromSeconds(10));
            if (exportStatus is null)
            {
                notRead.Add("the NFS server's exports, which did not answer within 10 s");
                return null;
            }

            foreach (string exported in exports)
            {
                FileStatus? st = exportStatus.GetValueOrDefault(exported);
                if (st is FileStatus at && devices.Contains((at.DevMajor, at.DevMinor)))
                {
                    return $"the NFS server exports '{exported}' from it (exportfs -u first)";
                }

                if (findLost && st is null && Gone(exported))
                {
                    lost.Add($"the NFS server exports '{exported}', which leads nowhere now");
                }
            }

            return null;
        }

        /// <summary>True when <paramref name="path"/> does not exist (ENOENT or ENOTDIR; not a lookup this user may not make).</summary>
        private static bool Gone(string path)
        {
            FileStatus.OfPath(path, "look up", out FileOperationException? error);
            return error?.Errno is Errno.ENOENT or Errno.ENOTDIR;
        }

        /// <summary>This process's mount table, then those of the other mount namespaces it can read (each with the path prefix that reaches into it and how to name it).</summary>
        private static List<(string? Prefix, string Where, MountTable Table, IReadOnlyDictionary<string, FileStatus?>? Resolved)> AllNamespaces(out List<string> unreadable)
        {
            var all = new List<(string?, string, MountTable, IReadOnlyDictionary<string, FileStatus?>?)> { (string.Empty, string.Empty, MountTable.Current(), null) };
            foreach (ForeignMountTable other in MountTable.OtherNamespaces(out unreadable))
            {
                all.Add((other.Prefix, $" in another mount namespace ({other.Name})", other.Table, other.Resolved));
            }

            return all;
        }

        /// <summary>The FileInUse refusal, naming the holders the /proc scan found (or saying they are invisible).</summary>
        private static FileOperationException InUse(OpenFile file, string what, List<FileUser> users)
        {
            string by;
            if (users.Count == 0)
            {
                // The lease is refused at one moment and /proc read at the next: a process that had the file open only for
                // a moment (a writer that opens, writes and closes) is gone by then. Said first, as the likely cause when it
                // does not happen again. (Before: only a loop device or an export was named; a hostile review.)
                by = Metadata.FileSystemUserId == 0
                    ? "something no process shows in /proc now: the kernel refused a write lease because another open file of it existed at that moment: a process that had it open only for a moment (try again when nothing writes to it), or, if this keeps happening, something in the kernel, such as a loop device backed by it (losetup -a lists those) or an NFS export"
                    : "a process this user cannot see, or one that had it open only for a moment (the kernel refused a write lease because another open file or mapping of it existed at that moment; try again, and as root the /proc scan would name a holder that stays)";
            }
            else
            {
                string list = string.Join(", ", users.GetRange(0, Math.Min(users.Count, 5)));
                by = list + (users.Count > 5 ? $" and {users.Count - 5} more" : string.Empty);
            }

            return new FileOperationException(
                FileErrorKind.InUse,
                Errno.EBUSY,
                "fcntl(F_SETLEASE)",
                file.Path,
                $"Cannot {Phrase(what, file.Path)}: it is in use by {by}. A process that keeps the file open would go on writing to the old copy and its writes would be lost. Stop it (for example shut down the VM) and try again; -Force does not override this.");
        }

        /// <summary>True when /proc/swaps lists this inode.</summary>
        internal static bool IsActiveSwapfile(in FileStatus st) => SwapTable.Read().Contains(st);

        /// <summary>
        /// Processes (this one included, apart from <paramref name="file"/>'s own descriptor) that have
        /// the file open, or mapped (a mapping outlives its descriptor). Processes whose /proc entries
        /// this user cannot read are not seen: as root every process is.
        /// </summary>
        internal static List<FileUser> FindUsers(OpenFile file)
        {
            FileStatus st = file.Status;
            MountEntry? mount = MountTable.Current().For(file);
            string ino = st.Inode.ToString(CultureInfo.InvariantCulture);
            return Scan((_, open) => open.SameInode(st), new[] { file.Handle.Fd }, places: false, procDir => IsMappedBy(procDir, ino, st, mount), out _);
        }

        /// <summary>
        /// Processes (this one included, apart from <paramref name="ownDescriptors"/> and its directories, which
        /// write nothing) that use anything on the devices given (a btrfs subvolume's files have a device of
        /// their own): a file open, a mapping, or their working or root directory there (not counted for this
        /// process and the ones that started it, such as the shell it was started from, which wait for it). A
        /// mapping is confirmed through map_files (root), else by its path being at or below
        /// <paramref name="path"/>. <paramref name="unseen"/>: the processes whose descriptors this user may not
        /// read (as root, none).
        /// </summary>
        internal static List<FileUser> FindUsersInside(IReadOnlySet<(uint Major, uint Minor)> devices, string? path, MountEntry? mount, ICollection<int> ownDescriptors, out int unseen) =>
            Scan((self, s) => devices.Contains((s.DevMajor, s.DevMinor)) && !(self && s.IsDirectory), ownDescriptors, places: true, procDir => IsMappedInside(procDir, devices, path, mount), out unseen);

        /// <summary>
        /// The /proc scan: each process whose descriptors (or, with <paramref name="places"/>, working or root
        /// directory) <paramref name="uses"/> accepts, else that <paramref name="mapped"/> says maps it. A thread
        /// with a descriptor table or filesystem attributes of its own (kcmp says so) is read too.
        /// </summary>
        private static List<FileUser> Scan(Func<bool, FileStatus, bool> uses, ICollection<int> ownDescriptors, bool places, Func<string, bool> mapped, out int unseen)
        {
            int self = Environment.ProcessId;
            HashSet<int> waiting = places ? Ancestors(self) : new HashSet<int>();
            var users = new List<FileUser>();
            unseen = 0;
            bool denied = false; // a descriptor or directory of the process this user may list but not look at

            // Without CAP_SYS_PTRACE (root in a container given CAP_SYS_ADMIN, a service with a narrowed bounding set) such a
            // process is not seen. With it, a refusal is a security module's policy for a process of its own (a sandbox's
            // init): left as before, as no caller could see more.
            bool? deniedIsUnseen = null; // asked once, only when a look is refused
            foreach (string procDir in EnumerateOrEmpty("/proc", directories: true))
            {
                string name = Path.GetFileName(procDir);
                if (!int.TryParse(name, NumberStyles.None, CultureInfo.InvariantCulture, out int pid))
                {
                    continue;
                }

                denied = false;
                bool counted = false; // counted unseen already

                // The process's own tables, then those of its threads that have their own.
                var tables = new List<(string Dir, bool Files, bool Fs)> { (procDir, true, true) };
                foreach (string taskDir in EnumerateOrEmpty(procDir + "/task", directories: true))
                {
                    if (int.TryParse(Path.GetFileName(taskDir), NumberStyles.None, CultureInfo.InvariantCulture, out int tid) && tid != pid)
                    {
                        bool files = !Processes.SharesWithProcess(pid, tid, files: true), fs = places && !Processes.SharesWithProcess(pid, tid, files: false);
                        if (files || fs)
                        {
                            tables.Add((taskDir, files, fs));
                        }
                    }
                }

                bool there = false, found = false;
                foreach ((string dir, bool files, bool fs) in tables)
                {
                    if (fs && places && !waiting.Contains(pid) && (Uses(dir + "/cwd") || Uses(dir + "/root")))
                    {
                        there = found = true;
                        break;
                    }

                    if (!files)
                    {
                        continue;
                    }

                    if (!CanList(dir + "/fd", out IEnumerable<string> descriptors))
                    {
                        unseen += IsKernelThread(procDir) ? 0 : 1; // a kernel thread opens no files of users
                        counted = true;
                        break;
                    }

                    foreach (string fdPath in descriptors)
                    {
                        if (pid == self && int.TryParse(Path.GetFileName(fdPath), NumberStyles.None, CultureInfo.InvariantCulture, out int fd) && ownDescriptors.Contains(fd))
                        {
                            continue;
                        }

                        if (Uses(fdPath))
                        {
                            found = true;
                            break;
                        }
                    }

                    if (found)
                    {
                        break;
                    }
                }

                if (found)
                {
                    users.Add(new FileUser(pid, Command(procDir), Mapped: false) { WorkingDirectory = there });
                }
                else if (mapped(procDir))
                {
                    users.Add(new FileUser(pid, Command(procDir), Mapped: true));
                }
                else if (denied && !counted && (deniedIsUnseen ??= !Processes.HasSysPtrace()) && !IsKernelThread(procDir))
                {
                    // Root without CAP_SYS_PTRACE (a container's or a systemd unit's bounding set) lists another user's
                    // descriptors but may not look where they lead: not seen, so not proven unused (before: taken as
                    // unused, and a subvolume was deleted under a file open in it; a hostile review).
                    unseen++;
                }
            }

            return users;

            bool Uses(string link)
            {
                if (FileStatus.OfProcLink(link, out int errno) is not FileStatus open)
                {
                    denied |= errno is Errno.EACCES or Errno.EPERM;
                    return false;
                }

                return uses(link.StartsWith($"/proc/{self.ToString(CultureInfo.InvariantCulture)}/", StringComparison.Ordinal), open);
            }
        }

        /// <summary>Whether the process is a kernel thread (PF_KTHREAD in the flags of /proc/PID/stat, which anyone may read).</summary>
        private static bool IsKernelThread(string procDir)
        {
            try
            {
                string stat = File.ReadAllText(procDir + "/stat");
                string[] after = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
                return (uint.Parse(after[6], CultureInfo.InvariantCulture) & 0x00200000) != 0;
            }
            catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or FormatException or ArgumentOutOfRangeException or IndexOutOfRangeException)
            {
                return false;
            }
        }

        /// <summary>This process and the ones that started it (parent, grandparent, ... below pid 1).</summary>
        private static HashSet<int> Ancestors(int pid)
        {
            var chain = new HashSet<int>();
            while (pid > 1 && chain.Add(pid))
            {
                try
                {
                    // "pid (comm) state ppid ...": the command may hold spaces and parentheses, so after the last ')'.
                    string stat = File.ReadAllText($"/proc/{pid.ToString(CultureInfo.InvariantCulture)}/stat");
                    string[] after = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
                    pid = int.Parse(after[1], CultureInfo.InvariantCulture);
                }
                catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or FormatException or ArgumentOutOfRangeException or IndexOutOfRangeException)
                {
                    break;
                }
            }

            return chain;
        }

        /// <summary>
        /// Whether process <paramref name="pid"/> (another than this one) has <paramref name="file"/> open: a descriptor of
        /// its own, looked at with a stat from the kernel's cache (nothing is opened, so no lease is broken, and a
        /// descriptor on a mount that no longer answers is not waited for). A descriptor that cannot be looked at is not
        /// that file (the file itself could be). Null where this user may not list its descriptors (another user's
        /// process, for a caller who is not root or lacks CAP_SYS_PTRACE).
        /// </summary>
        internal static bool? Holds(int pid, in FileStatus file)
        {
            string dir = $"/proc/{pid.ToString(CultureInfo.InvariantCulture)}/fd";
            List<string>? names = DirectoryListing.TryNames(dir, out _);
            if (names is null)
            {
                return null;
            }

            foreach (string n in names)
            {
                if (FileStatus.OfProcLink(dir + "/" + n) is FileStatus st && st.SameInode(file))
                {
                    return true;
                }
            }

            return false;
        }

        /// <summary>Lists a /proc descriptor directory; false when this user may not (a process that is gone lists as empty).</summary>
        private static bool CanList(string dir, out IEnumerable<string> entries)
        {
            // Names only (.NET's listing would stat where each descriptor's link leads: see TryNames).
            List<string>? names = DirectoryListing.TryNames(dir, out int errno);
            entries = names is null ? Array.Empty<string>() : names.ConvertAll(n => dir + "/" + n);
            return names is not null || errno is not (Errno.EACCES or Errno.EPERM);
        }

        /// <summary>A process's /proc/PID/maps, or null when it is gone or this user may not read it.</summary>
        private static string? Maps(string procDir)
        {
            try
            {
                return File.ReadAllText(procDir + "/maps");
            }
            catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
            {
                return null;
            }
        }

        private static bool IsMappedInside(string procDir, IReadOnlySet<(uint Major, uint Minor)> devices, string? path, MountEntry? mount)
        {
            if (Maps(procDir) is not string maps)
            {
                return false;
            }

            foreach (string line in maps.Split('\n', StringSplitOptions.RemoveEmptyEntries))
            {
                // maps shows the superblock's device (stat shows a btrfs subvolume's own): only those of this filesystem.
                string[] f = line.Split(' ', 6, StringSplitOptions.RemoveEmptyEntries);
                string[] dev = f.Length < 6 ? Array.Empty<string>() : f[3].Split(':');
                if (dev.Length != 2
                    || !uint.TryParse(dev[0], NumberStyles.HexNumber, CultureInfo.InvariantCulture, out uint major)
                    || !uint.TryParse(dev[1], NumberStyles.HexNumber, CultureInfo.InvariantCulture, out uint minor)
                    || (mount is not null && (major != mount.Major || minor != mount.Minor)))
                {
                    continue;
                }

                if (FileStatus.OfProcLink(procDir + "/map_files/" + f[0]) is FileStatus m)
                {
                    if (devices.Contains((m.DevMajor, m.DevMinor)))
                    {
                        return true;
                    }

                    continue;
                }

                // maps writes a newline in a name as \012 (and nothing else escaped): compared in its terms.
                string mappedPath = f[5].Trim();
                string shown = path?.Replace("\n", "\\012", StringComparison.Ordinal) ?? string.Empty;
                if (path is not null && (mappedPath == shown || mappedPath.StartsWith(shown + "/", StringComparison.Ordinal)))
                {
                    return true;
                }
            }

            return false;
        }

        private static bool IsMappedBy(string procDir, string ino, in FileStatus st, MountEntry? mount)
        {
            if (Maps(procDir) is not string maps)
            {
                return false;
            }

            // "7f5c4e709000-7f5c4e70a000 rw-s 00000000 00:27 257   /path": range perms offset dev inode path.
            foreach (string line in maps.Split('\n', StringSplitOptions.RemoveEmptyEntries))
            {
                string[] f = line.Split(' ', 6, StringSplitOptions.RemoveEmptyEntries);
                if (f.Length < 5 || f[4] != ino)
                {
                    continue;
                }

                // Inode numbers repeat across filesystems and btrfs subvolumes: confirm through
                // map_files (root), else by the superblock's device, which maps shows (stat shows a
                // btrfs subvolume's own device instead).
                if (FileStatus.OfProcLink(procDir + "/map_files/" + f[0]) is FileStatus mapped)
                {
                    if (mapped.SameInode(st))
                    {
                        return true;
                    }

                    continue;
                }

                string[] dev = f[3].Split(':');
                if (mount is null
                    || (dev.Length == 2
                        && uint.TryParse(dev[0], NumberStyles.HexNumber, CultureInfo.InvariantCulture, out uint major)
                        && uint.TryParse(dev[1], NumberStyles.HexNumber, CultureInfo.InvariantCulture, out uint minor)
                        && ((major == mount.Major && minor == mount.Minor) || (major == st.DevMajor && minor == st.DevMinor))))
                {
                    return true;
                }
            }

            return false;
        }

        private static string Command(string procDir)
        {
            try
            {
                return File.ReadAllText(procDir + "/comm").Trim();
            }
            catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
            {
                return "?";
            }
        }

        private static IEnumerable<string> EnumerateOrEmpty(string dir, bool directories)
        {
            try
            {
                // Materialized so a process that exits mid-enumeration cannot throw later.
                return directories ? Directory.GetDirectories(dir) : Directory.GetFileSystemEntries(dir);
            }
            catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
            {
                return Array.Empty<string>();
            }
        }
    }
}

namespace Btrfs.Core
{
    using System;
    using System.Collections.Generic;
    using Btrfs.Interop;
    using Btrfs.Kernel;

    /// <summary>In which order a walk hands out what is below a directory.</summary>
    internal enum WalkOrder
    {
        /// <summary>A directory's own entries (files and subdirectories) together, then each subdirectory's contents in turn: output grouped by directory forms one group per directory.</summary>
        EntriesFirst,

        /// <summary>Strict depth first: a subdirectory's contents right after it (a consumer that keeps one open level per directory it is in, as the tree mirror of New-BtrfsReflink -Recurse).</summary>
        DepthFirst,
    }

    /// <summary>What a walk found at a path.</summary>
    public enum WalkEntryKind
    {
        /// <summary>A regular file.</summary>
        File,

        /// <summary>A directory (yielded before its contents).</summary>
        Directory,

        /// <summary>A symbolic link: never followed.</summary>
        SymbolicLink,

        /// <summary>A FIFO, socket or device: never opened.</summary>
        Other,

        /// <summary>
        /// A directory on another filesystem, btrfs subvolume or mount, not entered; or a file mounted there (a bind mount
        /// of one file), not handed out; or (<see cref="WalkEntry.IsPlaceholder"/>) the empty directory a btrfs snapshot
        /// shows in place of a nested subvolume, never handed out, also with -CrossFileSystem.
        /// </summary>
        OtherFileSystem,

        /// <summary>A directory that could not be read (reported instead of it); <see cref="WalkEntry.Error"/> says why.</summary>
        Error,

        /// <summary>
        /// The hidden temporary name of a rewrite this module is running in another process (<see cref="WalkEntry.Rewriter"/>),
        /// or of a tree it is building or removing (<see cref="WalkEntry.IsTree"/>): proven by the run's marker and the
        /// process holding it open (<see cref="TemporaryFile.HeldByItsRun"/>). Never handed out, never entered. Opening it would count as someone using the file being replaced (a hostile test: a read-only
        /// walk beside a conversion made it give up and leave its full-size copy behind).
        /// </summary>
        RunningRewrite,
    }

    /// <summary>One entry of a walk.</summary>
    public readonly record struct WalkEntry(string Path, WalkEntryKind Kind, FileOperationException? Error = null)
    {
        /// <summary>Where the entry is: its directory (open) and its name there. Null for a starting point with no parent ("/").</summary>
        internal FileLocation? Location { get; init; }

        /// <summary>For a directory: the walker's own descriptor of it (O_DIRECTORY | O_NOFOLLOW), the one whose entries are listed.</summary>
        internal SafeFileDescriptor? Handle { get; init; }

        /// <summary>For <see cref="WalkEntryKind.RunningRewrite"/>: the process running that rewrite.</summary>
        internal int Rewriter { get; init; }

        /// <summary>For <see cref="WalkEntryKind.RunningRewrite"/>: a tree being built (or removed) under a hidden name, not a file.</summary>
        internal bool IsTree { get; init; }

        /// <summary>For <see cref="WalkEntryKind.OtherFileSystem"/>: the empty directory a btrfs snapshot shows in place of a nested subvolume.</summary>
        internal bool IsPlaceholder { get; init; }
    }

    /// <summary>
    /// The one tree walker every -Recurse uses: depth first, a directory before its contents, and a
    /// directory's own entries (files and subdirectories) together before anything below them, so output
    /// grouped by directory forms one group per directory; streamed (memory grows with the depth and the
    /// subdirectories waiting at each level, not with the number of files). Every directory is opened relative
    /// to its parent's descriptor with O_NOFOLLOW | O_DIRECTORY and listed through that descriptor, and
    /// every entry is handed out as a <see cref="FileLocation"/>: a path is never resolved again once
    /// classified, so a directory swapped for a symbolic link mid-walk leads nowhere. It stays on the
    /// starting filesystem unless asked (a directory whose st_dev or mount differs is reported, not entered:
    /// btrfs subvolumes and snapshots count as other filesystems, as with find -xdev, and so do bind
    /// mounts), never enters a directory that is one of its own ancestors (a loop), never follows
    /// symbolic links (not even as the starting point), never opens FIFOs or devices (entries are
    /// classified by d_type), and reports a directory it cannot read as an entry with an error and goes on.
    /// </summary>
    public static class TreeWalker
    {
        private const string Skipped = "Its contents were skipped; the rest of the tree was processed.";

        /// <summary>Walks <paramref name="root"/>: a file yields itself, a directory itself and everything below it.</summary>
        public static IEnumerable<WalkEntry> Walk(string root, bool crossFileSystems = false) => Walk(root, crossFileSystems, null);

        /// <summary>
        /// As <see cref="Walk(string, bool)"/>; <paramref name="enter"/> is asked before the walk goes
        /// into a directory below the root (its path, its status, its depth: 1 for the root's children):
        /// false yields the directory but not its contents.
        /// </summary>
        internal static IEnumerable<WalkEntry> Walk(string root, bool crossFileSystems, Func<string, FileStatus, int, bool>? enter) => Walk(root, crossFileSystems, WalkFilter.None, enter);

        /// <summary>
        /// As <see cref="Walk(string, bool, Func{string, FileStatus, int, bool})"/>, taking only what
        /// <paramref name="filter"/> takes below the root (the root itself, named by the user, always).
        /// </summary>
        /// <param name="trustedLinksOnly">
        /// The directory holding the root is reached following symbolic links on the way only where they belong to root or
        /// to this user (<see cref="DirectoryHandle.OpenFollowingTrustedLinks"/>); another user's is an error entry: for a
        /// walk whose files are copied somewhere that user may read (New-BtrfsReflink -Recurse). (A review: only a single
        /// source file was so checked.)
        /// </param>
        internal static IEnumerable<WalkEntry> Walk(string root, bool crossFileSystems, WalkFilter filter, Func<string, FileStatus, int, bool>? enter, WalkOrder order = WalkOrder.EntriesFirst, bool trustedLinksOnly = false)
        {
            ArgumentException.ThrowIfNullOrEmpty(root);
            ArgumentNullException.ThrowIfNull(filter);
            return WalkIterator(root.TrimEnd('/') is { Length: > 0 } trimmed ? trimmed : "/", crossFileSystems, filter, enter, order, trustedLinksOnly);
        }

        private static IEnumerable<WalkEntry> WalkIterator(string root, bool crossFileSystems, WalkFilter filter, Func<string, FileStatus, int, bool>? enter, WalkOrder order, bool trustedLinksOnly)
        {
            if (FileStatus.OfPath(root, "Cannot read", out FileOperationException? unreadable) is not FileStatus top)
            {
                yield return new WalkEntry(root, WalkEntryKind.Error, unreadable);
                yield break;
            }

            if (top.IsSymbolicLink)
            {
                string target = Files.RealPath(root) is string real ? $" ('{real}')" : string.Empty;
                yield return new WalkEntry(root, WalkEntryKind.Error, new FileOperationException(
                    FileErrorKind.IsSymbolicLink,
                    Errno.ELOOP,
                    "lstat",
                    root,
                    $"Cannot walk '{root}': it is a symbolic link, and -Recurse never follows symbolic links. Pass the path of its target{target} instead."));
                yield break;
            }

            // The starting point's own directory, opened by path (the user chose it), then the starting
            // point relative to it.
            string parentPath = root == "/" ? "/" : (System.IO.Path.GetDirectoryName(root) is { Length: > 0 } p ? p : ".");
            string rootName = root == "/" ? "." : System.IO.Path.GetFileName(root);
            // A parent this user may search but not read (mode 0711) is only named, which is enough to open the
            // walk's start in it (everything below goes through that one's descriptor). What would change a file
            // through such a directory refuses it (SafeRewrite: the directory could not be synced).
            SafeFileDescriptor? parent;
            FileOperationException? parentError = null;
            if (trustedLinksOnly)
            {
                try
                {
                    parent = DirectoryHandle.OpenFollowingTrustedLinks(
                        parentPath,
                        Metadata.FileSystemUserId,
                        (at, why) => new FileOperationException(FileErrorKind.IsSymbolicLink, Errno.ELOOP, "openat", root, $"Cannot walk '{root}': '{at}' {why}, so what is below it would be whatever that user makes it lead to. Nothing below it was processed. Give the path it leads to if that is the tree you mean."),
                        "Nothing below it was processed.",
                        orName: true);
                }
                catch (FileOperationException ex)
                {
                    parent = null;
                    parentError = ex;
                }
            }
            else
            {
                parent = DirectoryHandle.TryOpenOrName(parentPath, "Nothing below it was processed.", out parentError);
            }

            if (parent is null)
            {
                yield return new WalkEntry(root, WalkEntryKind.Error, parentError);
                yield break;
            }

            var stack = new Stack<Level>();
            try
            {
                var rootLocation = new FileLocation(parent, rootName, root); // no inode hint: the parent was opened by path after the name was examined
                if (!top.IsDirectory)
                {
                    yield return new WalkEntry(root, top.IsRegular ? WalkEntryKind.File : WalkEntryKind.Other) { Location = rootLocation };
                    yield break;
                }

                // A directory that cannot be listed is reported once, as an error, instead of as a directory.
                DirectoryListing? first = DirectoryListing.TryOpen(parent, rootName, root, Skipped, out FileOperationException? rootError);
                if (first is null)
                {
                    yield return new WalkEntry(root, WalkEntryKind.Error, rootError);
                    yield break;
                }

                if (!first.Status.SameInode(top))
                {
                    first.Dispose();
                    yield return new WalkEntry(root, WalkEntryKind.Error, Swapped(root));
                    yield break;
                }

                // Where a file could be a mount point: only in a directory holding one, from the mount table (one
                // read for the walk instead of a stat of every file).
                (string Root, HashSet<string> Directories)? mountParents = MountParentsBelow(root, first.Status);
                stack.Push(new Level(first) { MayHoldFileMounts = MayHoldFileMounts(mountParents, root, root) });
                yield return new WalkEntry(root, WalkEntryKind.Directory) { Location = rootLocation, Handle = first.Handle };

                while (stack.Count > 0)
                {
                    Level level = stack.Peek();
                    DirectoryListing listing = level.Listing;
                    if (level.Listed)
                    {
                        // The directory's own entries are all out: now into its subdirectories, one at a time,
                        // each opened again through this directory's descriptor and checked to be the one listed.
                        if (!level.Subdirectories.TryDequeue(out (string Name, FileStatus Status) next))
                        {
                            stack.Pop().Listing.Dispose();
                            continue;
                        }

                        string subPath = Combine(listing.Path, next.Name);
                        if (!crossFileSystems && FileStatus.OfAtCached(listing.Handle, next.Name) is { } now && OnOtherMount(now, top))
                        {
                            // Something was mounted on it since it was listed: not entered, and not opened either.
                            yield return new WalkEntry(subPath, WalkEntryKind.Error, new FileOperationException(
                                FileErrorKind.ChangedDuringCopy,
                                0,
                                "statx",
                                subPath,
                                $"Not entering '{subPath}': another filesystem was mounted on it after it was listed, and a walk stays on its own filesystem. Nothing below it was processed; run again to see it as the mount point it is now."));
                            continue;
                        }

                        DirectoryListing? again = DirectoryListing.TryOpen(listing.Handle, next.Name, subPath, Skipped, out FileOperationException? againError);
                        if (again is null || !again.Status.SameInode(next.Status))
                        {
                            again?.Dispose();
                            yield return new WalkEntry(subPath, WalkEntryKind.Error, again is null && againError!.Errno is not (Errno.ELOOP or Errno.ENOTDIR) ? Gone(againError, subPath) : Swapped(subPath));
                            continue;
                        }

                        stack.Push(new Level(again) { MayHoldFileMounts = MayHoldFileMounts(mountParents, root, subPath) });
                        continue;
                    }

                    (string Name, EntryType Type, ulong Inode)? listed = listing.Next(out FileOperationException? readError, (name, type) => type == EntryType.Directory ? filter.TakesDirectory(name) : filter.TakesFile(name));
                    if (readError is not null && !level.Relisting)
                    {
                        yield return new WalkEntry(listing.Path, WalkEntryKind.Error, readError);
                    }

                    if (listed is not { } entry)
                    {
                        // btrfs lists no entry renamed after the listing began (it stops at the index the directory had
                        // when it was opened; a rename gives the name a new one): a subdirectory renamed meanwhile (an
                        // application's rename, or a hostile exchange with a link) was in neither name's place, and all
                        // below it was passed over without a word (a hostile review). A directory that changed while it
                        // was listed is listed again, for subdirectories not met before; one that keeps changing is said.
                        FileStatus since = level.RelistedFrom ?? listing.Status;
                        if (FileStatus.Of(listing.Handle) is FileStatus now && (now.ModifyTime != since.ModifyTime || now.ChangeTime != since.ChangeTime))
                        {
                            if (level.Relists < MostRelists)
                            {
                                level.Relists++;
                                level.RelistedFrom = now;
                                level.Relisting = true;
                                listing.Rewind();
                                continue;
                            }

                            // Said only where subdirectories are being renamed (a listing again met one the first did
                            // not): a directory whose files an application keeps renaming (a mail spool) is no error.
                            if (level.FoundWhenRelisted)
                            {
                                yield return new WalkEntry(listing.Path, WalkEntryKind.Error, new FileOperationException(
                                    FileErrorKind.ChangedSinceListed,
                                    0,
                                    "readdir",
                                    listing.Path,
                                    $"'{listing.Path}' kept changing while it was listed ({MostRelists + 1} times), and subdirectories in it were being renamed: one renamed meanwhile may have been passed over, with all below it. Run again when nothing renames entries in it."));
                            }
                        }

                        level.Listed = true;
                        level.Forget();
                        continue;
                    }

                    string path = Combine(listing.Path, entry.Name);
                    var location = new FileLocation(listing.Handle, entry.Name, path) { Inode = entry.Inode };
                    WalkEntryKind kind = KindOf(entry.Type);

                    // Listed again (see above): only subdirectories not met before; every other entry was handed out
                    // already. Known by device and inode from the kernel's cache (also what says another filesystem
                    // below): the listing's number of a subvolume's entry is the subvolume's id, which an ordinary
                    // directory beside it may have as its inode number (before: the one listed second was passed over
                    // with all below it, without a word; a backup by New-BtrfsReflink -Recurse lacked it: a hostile review).
                    FileStatus? seen = kind == WalkEntryKind.Directory ? FileStatus.OfAtCached(listing.Handle, entry.Name) : null;
                    // Files too: one renamed in meanwhile (a file saved by renaming a new one over it, as editors and
                    // configuration tools save) was in neither place, not processed and not said: a Pester check of the
                    // tree passed without it (a hostile test). Those handed out before are known by their names'
                    // hashes (also those this walk's own command replaced, which the exchange gives a new index) and, when
                    // renamed, by their inode numbers (FileNotHandedOut).
                    if (kind == WalkEntryKind.Directory ? !level.MetDirectory(entry.Name, entry.Inode, seen) : !level.FileNotHandedOut(entry.Name, entry.Inode, filter, () => FileStatus.IdentityAtCached(listing.Handle, entry.Name)))
                    {
                        continue;
                    }

                    level.FoundWhenRelisted |= level.Relisting && kind == WalkEntryKind.Directory; // files renamed in are no error (a mail spool)

                    if (kind != WalkEntryKind.Directory)
                    {
                        if (filter.TakesFile(entry.Name))
                        {
                            // A file can be a mount point too (a bind mount of one file, as containers get them):
                            // from the kernel's cache, as a directory, so that one that no longer answers is not
                            // waited for by whoever opens it.
                            // With -CrossFileSystem it is taken, without the listing's inode number: that is the
                            // number of the file the mount hides (a reader of many files by number, such as
                            // Measure-BtrfsUsage's, measured that one instead; found by a hostile review).
                            bool elsewhere = kind == WalkEntryKind.File && level.MayHoldFileMounts && FileStatus.OfAtCached(listing.Handle, entry.Name) is { } file
                                && FileOnOtherMount(file, crossFileSystems ? listing.Status : top);
                            if (kind == WalkEntryKind.File && entry.Name.Contains(TemporaryFile.Marker, StringComparison.Ordinal)
                                && TemporaryFile.RunningRewriteOf(listing.Handle, entry.Name) is int rewriter)
                            {
                                yield return new WalkEntry(path, WalkEntryKind.RunningRewrite) { Location = location, Rewriter = rewriter };
                                continue;
                            }

                            yield return new WalkEntry(path, !elsewhere ? kind : crossFileSystems ? WalkEntryKind.File : WalkEntryKind.OtherFileSystem) { Location = elsewhere ? location with { Inode = 0 } : location };
                        }

                        continue;
                    }

                    if (entry.Name.Contains(".~btrfs-", StringComparison.Ordinal) && StagingDirectory.RunningOf(listing.Handle, entry.Name) is int builder)
                    {
                        yield return new WalkEntry(path, WalkEntryKind.RunningRewrite) { Location = location, Rewriter = builder, IsTree = true };
                        continue;
                    }

                    if (!filter.TakesDirectory(entry.Name))
                    {
                        continue; // excluded: neither it nor anything below it
                    }

                    // Another filesystem is recognised before it is opened: an open of the mount point of one
                    // that no longer answers would wait forever, a stat of it from the kernel's cache does not.
                    // (The empty directory a btrfs snapshot shows in place of a nested subvolume has a device number of its own,
                    // and is on this mount: it is opened, to be named for what it is.)
                    if (!crossFileSystems && seen is { } cached && (cached.IsDirectory || cached.Mode == 0) && OnOtherMount(cached, top)
                        && !(cached.Inode == BtrfsInspect.NestedSubvolumePlaceholderInode && cached.MountId == listing.Status.MountId && cached.MountId != 0))
                    {
                        yield return new WalkEntry(path, WalkEntryKind.OtherFileSystem) { Location = location };
                        continue;
                    }

                    DirectoryListing? sub = DirectoryListing.TryOpen(listing.Handle, entry.Name, path, Skipped, out FileOperationException? openError);
                    if (sub is null)
                    {
                        // Swapped for a symbolic link (or something else) since it was listed: never followed, and said:
                        // the directory listed may have gone anywhere (renamed over a link the listing named as a link:
                        // neither name was walked), so what was under it was not processed. (Before: passed over as a
                        // link, with a verbose note at most, and a scheduled defragmentation's pass counted as complete;
                        // found by a hostile review.)
                        if (openError!.Errno is Errno.ELOOP or Errno.ENOTDIR)
                        {
                            yield return new WalkEntry(path, WalkEntryKind.Error, Swapped(path)) { Location = location };
                        }
                        else
                        {
                            yield return new WalkEntry(path, WalkEntryKind.Error, Gone(openError, path)) { Location = location };
                        }

                        continue;
                    }

                    bool entered = false;
                    try
                    {
                        // Nothing is in it, and btrfs takes no change on it (every attribute call is ENOTTY): passed over
                        // for what it is, also with -CrossFileSystem (before: an ENOTTY error from each cmdlet that changes
                        // directories, and "another subvolume" without it; a hostile test).
                        if (sub.Status.Inode == BtrfsInspect.NestedSubvolumePlaceholderInode
                            && BtrfsOnly.IsPlaceholder(sub.Status, Files.FileSystemOf(sub.Handle)?.Kind ?? FileSystemKind.Other))
                        {
                            yield return new WalkEntry(path, WalkEntryKind.OtherFileSystem) { Location = location, IsPlaceholder = true };
                            continue;
                        }

                        // Another filesystem or btrfs subvolume (st_dev), or another mount of the same one (a
                        // bind mount: statx's mount id), is not entered unless asked.
                        if (!crossFileSystems && OnOtherMount(sub.Status, top))
                        {
                            yield return new WalkEntry(path, WalkEntryKind.OtherFileSystem) { Location = location };
                            continue;
                        }

                        // A directory that is one of its own ancestors (a bind mount of an ancestor) would be walked forever.
                        if (IsAncestor(stack, sub.Status))
                        {
                            yield return new WalkEntry(path, WalkEntryKind.Error, new FileOperationException(
                                FileErrorKind.DirectoryLoop,
                                Errno.ELOOP,
                                "openat",
                                path,
                                $"Not descending into '{path}': it is the same directory as one above it (a bind mount makes a loop), and walking it would never end. The rest of the tree was processed.")) { Location = location };
                            continue;
                        }

                        // Asked also where -Depth stops the walk: a directory an earlier walk started at is then not
                        // handed out (processed) a second time either.
                        bool fresh = enter is null || enter(path, sub.Status, stack.Count);
                        if (filter.Enters(stack.Count) && fresh)
                        {
                            if (order == WalkOrder.EntriesFirst)
                            {
                                // Handed out among its directory's files (so one directory's entries stay
                                // together), entered after them.
                                level.Subdirectories.Enqueue((entry.Name, sub.Status));
                            }
                            else
                            {
                                stack.Push(new Level(sub) { MayHoldFileMounts = MayHoldFileMounts(mountParents, root, path) });
                                entered = true;
                            }
                        }

                        yield return new WalkEntry(path, WalkEntryKind.Directory) { Location = location, Handle = sub.Handle };
                    }
                    finally
                    {
                        if (!entered)
                        {
                            sub.Dispose();
                        }
                    }
                }
            }
            finally
            {
                while (stack.Count > 0)
                {
                    stack.Pop().Listing.Dispose();
                }

                parent.Dispose();
            }
        }

        /// <summary>
        /// The directories below <paramref name="root"/> (by their real paths, under the root's real path) that
        /// hold a mount point, from this process's mount table; null when it cannot be read (then every file is
        /// looked at). A mount made after this is read, on a file, is not seen.
        /// </summary>
        private static (string Root, HashSet<string> Directories)? MountParentsBelow(string root, in FileStatus opened)
        {
            // The real path must lead to the very directory the walk opened, on the same mount: a root reached
            // through /proc/PID/root (another mount namespace) or a parent swapped meanwhile gives a text this
            // mount table does not describe, and then every file is looked at.
            if (Files.RealPath(root) is not string real || FileStatus.OfPath(real, followLinks: false) is not FileStatus there
                || !there.SameInode(opened) || there.MountId != opened.MountId)
            {
                return null;
            }

            MountTable table;
            try
            {
                table = MountTable.Read();
            }
            catch (Exception)
            {
                return null; // unreadable or not understood: every file is looked at
            }

            string prefix = real == "/" ? "/" : real + "/";
            var directories = new HashSet<string>(StringComparer.Ordinal);
            foreach (MountEntry e in table.Entries)
            {
                if (e.MountPoint.Length > prefix.Length && e.MountPoint.StartsWith(prefix, StringComparison.Ordinal))
                {
                    directories.Add(e.MountPoint[..e.MountPoint.LastIndexOf('/')] is { Length: > 0 } parent ? parent : "/");
                }
            }

            return (real, directories);
        }

        /// <summary>Whether the directory at <paramref name="path"/> (below the walk's <paramref name="root"/>) may hold a file that is a mount point.</summary>
        private static bool MayHoldFileMounts((string Root, HashSet<string> Directories)? mountParents, string root, string path)
        {
            if (mountParents is not { } m)
            {
                return true;
            }

            if (m.Directories.Count == 0)
            {
                return false;
            }

            string below = root == "/" ? (path == "/" ? string.Empty : path) : path[root.Length..]; // "" or "/a/b"
            return m.Directories.Contains(m.Root == "/" ? (below.Length == 0 ? "/" : below) : m.Root + below);
        }

        /// <summary>
        /// Whether an entry passed as <see cref="WalkEntryKind.RunningRewrite"/> belongs to another user than the caller: then
        /// said as a warning, not a verbose note (a process of that user that holds it open passes for its run, so such a
        /// name can keep a file or a tree from root's walks: said where it is seen; a review).
        /// </summary>
        internal static bool IsAnotherUsers(WalkEntry entry) =>
            entry.Location is { } at && FileStatus.OfAt(at.Directory, at.Name) is FileStatus st && st.Uid != Metadata.FileSystemUserId;

        /// <summary>What a walk says about an entry it passes as <see cref="WalkEntryKind.RunningRewrite"/>.</summary>
        internal static string RunningRewriteMessage(WalkEntry entry) => entry.IsTree
            ? $"Not entering '{entry.Path}': the hidden name of a tree this module is building (New-BtrfsReflink -Recurse) or removing in {(entry.Rewriter == Environment.ProcessId ? "this process" : $"process {entry.Rewriter}")}; it takes its own name when it is done, or goes."
            : $"Skipping '{entry.Path}': the hidden temporary name of a rewrite this module is running in {(entry.Rewriter == Environment.ProcessId ? "this process" : $"process {entry.Rewriter}")} (a conversion, or a copy made with -Force); it is gone, or in place under its file's name, within moments.";

        /// <summary>What a -Recurse says about an entry it passes as <see cref="WalkEntryKind.OtherFileSystem"/>.</summary>
        internal static string OtherFileSystemMessage(WalkEntry entry) =>
            entry.IsPlaceholder
                ? $"Skipping '{entry.Path}': {BtrfsOnly.PlaceholderIs}."
                : $"Skipping '{entry.Path}': it is a mount point of another filesystem, btrfs subvolume or mount (use -CrossFileSystem to include it).";

        /// <summary>How many times a directory that changed while it was listed is listed again before that is said.</summary>
        private const int MostRelists = 3;

        private static string Combine(string directory, string name) => directory == "/" ? "/" + name : directory + "/" + name;

        /// <summary>On another filesystem or btrfs subvolume (st_dev), or another mount of the same one (a bind mount: statx's mount id).</summary>
        private static bool OnOtherMount(in FileStatus st, in FileStatus top) =>
            st.DevMajor != top.DevMajor || st.DevMinor != top.DevMinor || (st.MountId != 0 && top.MountId != 0 && st.MountId != top.MountId);

        /// <summary>
        /// A file is on another filesystem only as a mount point of its own, so its mount id says it (where statx
        /// gives one). Its device alone would not: overlayfs gives a file the device of the layer it is in.
        /// </summary>
        private static bool FileOnOtherMount(in FileStatus st, in FileStatus top) =>
            st.MountId != 0 && top.MountId != 0 ? st.MountId != top.MountId : st.DevMajor != top.DevMajor || st.DevMinor != top.DevMinor;

        private static bool IsAncestor(Stack<Level> stack, in FileStatus st)
        {
            foreach (Level level in stack)
            {
                if (level.Listing.Status.SameInode(st))
                {
                    return true;
                }
            }

            return false;
        }

        /// <summary>A subdirectory the walk listed that is gone when it is opened: said so (<see cref="FileOperationException.SinceListed"/>).</summary>
        private static FileOperationException Gone(FileOperationException error, string path) =>
            FileOperationException.SinceListed(error, path, "Nothing below it was processed; run again for it.");

        /// <summary>
        /// A directory the walk listed (or its start, looked at) that is another file when it is opened: the same error
        /// (FileChangedSinceListed) as a file that went since the listing; before, FileChangedDuringCopy, which no help
        /// named for a walk, where nothing is copied. Found by a hostile review.
        /// </summary>
        private static FileOperationException Swapped(string path) =>
            new(FileErrorKind.ChangedSinceListed, 0, "openat", path, $"Cannot walk '{path}': it was replaced by another file after it was listed, before it was opened. Nothing below it was processed; run again for it.");

        private static WalkEntryKind KindOf(EntryType type) => type switch
        {
            EntryType.File => WalkEntryKind.File,
            EntryType.Directory => WalkEntryKind.Directory,
            EntryType.SymbolicLink => WalkEntryKind.SymbolicLink,
            _ => WalkEntryKind.Other,
        };
    
        /// <summary>A directory being walked: its listing, then (once listed) the subdirectories to enter, by name and the inode they had.</summary>
        private sealed class Level(DirectoryListing listing)
        {
            internal DirectoryListing Listing { get; } = listing;

            internal Queue<(string Name, FileStatus Status)> Subdirectories { get; } = new();

            internal bool Listed { get; set; }

            /// <summary>Listed again because it changed while it was listed: only subdirectories not met yet are taken.</summary>
            internal bool Relisting { get; set; }

            /// <summary>A listing again met a subdirectory the ones before had not: subdirectories are being renamed.</summary>
            internal bool FoundWhenRelisted { get; set; }

            /// <summary>How many times it was listed again.</summary>
            internal int Relists { get; set; }

            /// <summary>Its status when it was last listed again (its change is measured from there).</summary>
            internal FileStatus? RelistedFrom { get; set; }

            /// <summary>
            /// The most files a directory's listings remember (their names' hashes and their inode numbers: about 10 MiB at
            /// most): past them a listing again hands out no file (one renamed in meanwhile may then be passed over), so
            /// memory stays bounded in a huge directory. Dropped once the directory is listed.
            /// </summary>
            internal const int MostFilesRemembered = 1 << 17;

            /// <summary>A seed of this process's for the names' hashes: a user who names files cannot aim at a collision (a review).</summary>
            private static readonly long NameSeed = BitConverter.ToInt64(System.Security.Cryptography.RandomNumberGenerator.GetBytes(8));

            /// <summary>When the listing began, less a margin for the clock the filesystem stamps files with.</summary>
            private readonly DateTimeOffset begun = DateTimeOffset.UtcNow.AddMilliseconds(-100);

            private HashSet<ulong>? names = new();
            private HashSet<ulong>? inodes = new();

            /// <summary>
            /// Whether the file <paramref name="name"/> (not a directory; the listing's <paramref name="inode"/>) is to be
            /// handed out: a name not handed out before in this directory, unless it is a file handed out under another
            /// name and renamed since (a log rotated, a file moved aside, which xfs and ext4 can list under both names in
            /// one listing, and btrfs in the listing again; a hostile test). That takes proof (<paramref name="identity"/>,
            /// asked only when the inode number repeats): the name leads to that inode (a FUSE filesystem may give every
            /// entry the same number), it has one link (each name of a hard-linked file is handed out), and it was born
            /// before the listing began (ext4 and xfs give a removed file's number to the next new one). Under a name the
            /// walk's filter takes (an excluded one is passed over below as it was then). Past the bound, as before: every
            /// name the first listing has, none that a listing again has.
            /// </summary>
            internal bool FileNotHandedOut(string name, ulong inode, WalkFilter filter, Func<(ulong Inode, uint Links, FileTime? Born)?> identity)
            {
                if (names is null || inodes is null || !filter.TakesFile(name))
                {
                    return !Relisting;
                }

                if (names.Count >= MostFilesRemembered)
                {
                    Forget();
                    return !Relisting;
                }

                if (!names.Add(NameHash(name)))
                {
                    return false;
                }

                return inodes.Add(inode) || !(identity() is (ulong ino, 1, FileTime born) && ino == inode
                    && DateTimeOffset.FromUnixTimeSeconds(born.Seconds).AddTicks(born.Nanoseconds / 100) < begun);
            }

            /// <summary>Listed: its files are all handed out, and nothing of them need be remembered.</summary>
            internal void Forget()
            {
                names = null;
                inodes = null;
            }

            private static ulong NameHash(string name) => System.IO.Hashing.XxHash64.HashToUInt64(System.Runtime.InteropServices.MemoryMarshal.AsBytes(name.AsSpan()), NameSeed);

            private readonly HashSet<(ulong Device, ulong Inode, ulong Listed, string? Name)> directories = new();
            private readonly HashSet<(ulong Listed, string Name)> listed = new();

            /// <summary>
            /// Notes a subdirectory the listing met; false when it was met before: under the same name and listing
            /// number, <paramref name="inode"/> (one gone or mounted over since it was met, which looks different now),
            /// or as the same directory under another name (renamed meanwhile): the device and inode it was
            /// <paramref name="seen"/> with and the listing's number (the listing's number of a subvolume is its id,
            /// which a directory beside it may have as its inode number; two mounts of one directory have the numbers
            /// of the directories they hide); an empty subvolume's placeholder in a snapshot (inode 2: every one in a
            /// directory looks the same) by its name too.
            /// </summary>
            internal bool MetDirectory(string name, ulong inode, FileStatus? seen)
            {
                bool byName = listed.Add((inode, name));
                bool bySelf = seen is not { Mode: not 0 } st || directories.Add((st.Device, st.Inode, inode, st.Inode == 2 ? name : null));
                return byName && bySelf;
            }

            /// <summary>Whether a file listed here may be a mount point (its mount is then looked at before it is handed out).</summary>
            internal bool MayHoldFileMounts { get; init; }
        }
    }
}

namespace Btrfs.Core
{
    using System;
    using System.Collections.Generic;
    using System.Linq;
    using Btrfs.Interop;
    using Btrfs.Kernel;

    /// <summary>What one entry of a mirrored tree becomes.</summary>
    internal enum MirrorItemKind
    {
        /// <summary>A directory to create (or to use, when it exists).</summary>
        Directory,

        /// <summary>A regular file to clone (or copy, with the Copy fallback).</summary>
        File,

        /// <summary>A symbolic link to recreate (never followed).</summary>
        SymbolicLink,

        /// <summary>Not copied: a FIFO, socket or device, or another filesystem; <see cref="MirrorItem.Message"/> says why.</summary>
        Skipped,

        /// <summary>A directory that could not be read; <see cref="MirrorItem.Error"/>.</summary>
        Error,
    }

    /// <summary>Whether the destination directory an item goes into exists.</summary>
    internal enum MirrorParent
    {
        /// <summary>It exists and is open: the item can be made.</summary>
        Ready,

        /// <summary>It was not made (declined, or -WhatIf): the item can only be described.</summary>
        NotMade,

        /// <summary>Making it failed (already reported): the item is skipped silently.</summary>
        Failed,
    }

    /// <summary>One entry of the source tree and where it goes.</summary>
    internal sealed class MirrorItem
    {
        internal MirrorItem(WalkEntry entry, MirrorItemKind kind, string target, MirrorParent parent)
        {
            Entry = entry;
            Kind = kind;
            Target = target;
            Parent = parent;
        }

        internal WalkEntry Entry { get; }

        internal string Source => Entry.Path;

        internal MirrorItemKind Kind { get; }

        internal string Target { get; }

        internal MirrorParent Parent { get; }

        internal string? Message { get; init; }

        internal FileOperationException? Error { get; init; }

        /// <summary>Set by <see cref="TreeMirror.MakeDirectory"/>: the directory exists now and its contents can be made.</summary>
        internal bool Made { get; set; }

        /// <summary>Set by <see cref="TreeMirror.MakeDirectory"/> when the directory did not exist and was created (not merged into).</summary>
        internal bool Created { get; set; }

        /// <summary>Set when making the directory failed: its contents are skipped without more errors.</summary>
        internal bool Failed { get; set; }

        /// <summary>The made directory, open (O_NOFOLLOW | O_DIRECTORY): its contents are made relative to it.</summary>
        internal SafeFileDescriptor? TargetHandle { get; set; }

        /// <summary>The source directory's status when it was mirrored (for -Preserve).</summary>
        internal FileStatus? SourceStatus { get; set; }

        /// <summary>The source directory, open (a duplicate of the walker's descriptor, which closes when the walk moves on): looked at again when the walk leaves it.</summary>
        internal SafeFileDescriptor? SourceHandle { get; set; }
    }

    /// <summary>
    /// New-BtrfsReflink -Recurse's Core: mirrors a tree — directories created, regular files cloned,
    /// symbolic links recreated (never followed) — through descriptors only. The source is walked by the
    /// one <see cref="TreeWalker"/> (every entry opened relative to its listed directory); every
    /// destination directory is created with mkdirat in its already-open parent and opened with
    /// O_NOFOLLOW | O_DIRECTORY, and every file, link, owner and time is made relative to it, so a
    /// directory swapped for a symbolic link on either side mid-run leads nowhere. A destination inside
    /// the source tree is refused before anything is created (judged by device and inode of every
    /// ancestor, not by the path's spelling). The command iterates <see cref="Items"/> and, per item,
    /// asks (ShouldProcess) and calls <see cref="MakeDirectory"/>, <see cref="PrepareFile"/> or <see cref="MakeLink"/>.
    /// </summary>
    internal sealed class TreeMirror : IDisposable
    {
        private readonly string sourceRoot;
        private readonly string destinationRoot;
        private readonly ReflinkOptions options;
        private readonly ReflinkSession session;
        private readonly bool crossFileSystems;
        private readonly WalkFilter filter;
        private readonly Stack<Level> levels = new();

        /// <summary>Every directory of the destination tree made or used so far (device and inode): never walked into as source.</summary>
        private readonly HashSet<(uint, uint, ulong)> destinationDirectories = new();
        private readonly SafeFileDescriptor destinationParent;
        private readonly string destinationRootName;
        private readonly bool stage;

        /// <summary>Source files with more than one name (device and inode) this run copied once: where that copy is, so their other names become hard links to it.</summary>
        private readonly Dictionary<(uint, uint, ulong), FirstCopy> linked = new();
        private StagingDirectory? staging;

        /// <summary>The destination tree's top directory, open: a copy is found again from it, name by name, never following a link.</summary>
        private SafeFileDescriptor? destinationHandle;
        private WalkEntry? rootEntry;

        private TreeMirror(string sourceRoot, string destinationRoot, ReflinkOptions options, ReflinkSession session, bool crossFileSystems, WalkFilter filter, SafeFileDescriptor destinationParent, bool stage)
        {
            this.stage = stage;
            this.filter = filter;
            this.sourceRoot = sourceRoot;
            this.destinationRoot = destinationRoot;
            this.options = options;
            this.session = session;
            this.crossFileSystems = crossFileSystems;
            this.destinationParent = destinationParent;
            destinationRootName = System.IO.Path.GetFileName(destinationRoot);
        }

        /// <summary>
        /// Checks the two roots and opens the destination's parent: the source must be a directory, the
        /// destination's parent must exist, and the destination must not lie inside the source.
        /// With <paramref name="stage"/>, a destination that does not exist yet is built hidden beside its
        /// name and appears whole at the end (<see cref="StagingDirectory"/>); an existing one is merged
        /// into, each file appearing whole under its name. Throws <see cref="FileOperationException"/>;
        /// nothing is created.
        /// </summary>
        internal static TreeMirror Start(string sourceRoot, string destinationRoot, ReflinkOptions options, ReflinkSession session, bool crossFileSystems, WalkFilter? filter = null, bool stage = false)
        {
            string src = sourceRoot.Length > 1 ? sourceRoot.TrimEnd('/') : sourceRoot;
            string dest = System.IO.Path.GetFullPath(destinationRoot);
            dest = dest.Length > 1 ? dest.TrimEnd('/') : dest;
            FileStatus source = FileStatus.Require(src, followLinks: false, "Cannot read");
            ThrowIfInside(src, source, dest);
            string parent = System.IO.Path.GetDirectoryName(dest) ?? "/";
            SafeFileDescriptor parentFd;
            try
            {
                parentFd = DirectoryHandle.OpenFollowingTrustedLinks(parent, Metadata.FileSystemUserId, (at, why) => DirectoryFacts.ThroughAnotherUsersLink(dest, at, why), "Nothing was created.");
            }
            catch (FileOperationException ex) when (ex.Kind is FileErrorKind.IsSymbolicLink)
            {
                throw;
            }
            catch (FileOperationException ex) when (ex.Kind == FileErrorKind.NotFound)
            {
                throw new FileOperationException(FileErrorKind.NotFound, ex.Errno, "open", dest, $"Cannot create '{dest}': its directory '{parent}' does not exist. Create it first. Nothing was created.");
            }
            catch (FileOperationException ex)
            {
                throw DirectoryHandle.CannotCreateIn(ex, parent, dest, $"create '{dest}'");
            }

            return new TreeMirror(src, dest, options, session, crossFileSystems, filter ?? WalkFilter.None, parentFd, stage);
        }

        /// <summary>The destination tree's path.</summary>
        internal string DestinationRoot => destinationRoot;

        /// <summary>The regular files below the source that will be copied (a listing only: nothing is opened or examined), for a progress percentage.</summary>
        internal long TotalFiles()
        {
            long total = 0;
            foreach (WalkEntry e in TreeWalker.Walk(sourceRoot, crossFileSystems, filter, null, trustedLinksOnly: true))
            {
                total += e.Kind == WalkEntryKind.File ? 1 : 0;
            }

            return total;
        }

        /// <summary>
        /// The source tree's entries, a directory before its contents, each with its destination. A
        /// directory's contents can be made only after <see cref="MakeDirectory"/> made it; afterwards
        /// (deepest first, when the walk leaves it) a directory gets its source's owner, mode and times
        /// with -Preserve.
        /// </summary>
        internal IEnumerable<MirrorItem> Items()
        {
            MirrorItem? pending = null; // yielded, not yet on the stack (the pipeline may stop meanwhile)
            try
            {
                foreach (WalkEntry entry in TreeWalker.Walk(sourceRoot, crossFileSystems, filter, (_, st, _) => !destinationDirectories.Contains((st.DevMajor, st.DevMinor, st.Inode)), WalkOrder.DepthFirst, trustedLinksOnly: true))
                {
                    if (entry.Kind == WalkEntryKind.Error && levels.Any(l => l.SourcePath == entry.Path))
                    {
                        // About a directory being copied (its listing failed part-way, or named what no path can name):
                        // it is left only when the walk goes past it, not now, or the rest of the tree would be skipped.
                        while (levels.Peek().SourcePath != entry.Path)
                        {
                            if (Leave(levels.Pop()) is MirrorItem done)
                            {
                                yield return done;
                            }
                        }

                        yield return new MirrorItem(entry, MirrorItemKind.Error, entry.Path == sourceRoot ? destinationRoot : destinationRoot + entry.Path[sourceRoot.Length..], levels.Peek().State) { Error = entry.Error };
                        continue;
                    }

                    string parentPath = entry.Path == sourceRoot ? string.Empty : entry.Path[..entry.Path.LastIndexOf('/')] is { Length: > 0 } p ? p : "/";
                    while (levels.Count > 0 && levels.Peek().SourcePath != parentPath)
                    {
                        if (Leave(levels.Pop()) is MirrorItem failed)
                        {
                            yield return failed;
                        }
                    }

                    string target = entry.Path == sourceRoot ? destinationRoot : destinationRoot + entry.Path[sourceRoot.Length..];
                    MirrorParent state = entry.Path == sourceRoot ? MirrorParent.Ready
                        : levels.Count == 0 ? MirrorParent.Failed
                        : levels.Peek().State;
                    if (state == MirrorParent.Failed)
                    {
                        continue;
                    }

                    // The destination reached again from inside the source (a bind mount of it, or of a
                    // directory above it): copying it would copy the copy, forever.
                    if (entry.Kind == WalkEntryKind.Directory && entry.Handle is { } seen && FileStatus.Of(seen) is FileStatus st
                        && destinationDirectories.Contains((st.DevMajor, st.DevMinor, st.Inode)))
                    {
                        // (The walk does not enter it.)
                        yield return new MirrorItem(entry, MirrorItemKind.Error, target, state)
                        {
                            Error = new FileOperationException(FileErrorKind.DestinationInsideSource, Errno.ELOOP, "openat", entry.Path, $"Not copying '{entry.Path}': it is a directory of the destination tree, reached again from inside the source (through a bind mount), and copying it would copy the copy forever. The rest of the tree was copied."),
                        };
                        continue;
                    }

                    MirrorItem item = entry.Kind switch
                    {
                        WalkEntryKind.Directory => new MirrorItem(entry, MirrorItemKind.Directory, target, state),
                        WalkEntryKind.File => new MirrorItem(entry, MirrorItemKind.File, target, state),
                        WalkEntryKind.SymbolicLink => new MirrorItem(entry, MirrorItemKind.SymbolicLink, target, state),
                        WalkEntryKind.Error => new MirrorItem(entry, MirrorItemKind.Error, target, state) { Error = entry.Error },
                        WalkEntryKind.OtherFileSystem => new MirrorItem(entry, MirrorItemKind.Skipped, target, state) { Message = TreeWalker.OtherFileSystemMessage(entry) },
                        WalkEntryKind.RunningRewrite => new MirrorItem(entry, MirrorItemKind.Skipped, target, state) { Message = TreeWalker.RunningRewriteMessage(entry) },
                        _ => new MirrorItem(entry, MirrorItemKind.Skipped, target, state) { Message = $"Skipping '{entry.Path}': it is not a regular file, directory or symbolic link (FIFOs, sockets and devices are not copied)." },
                    };
                    pending = item;
                    yield return item;
                    pending = null;

                    if (item.Kind == MirrorItemKind.Directory)
                    {
                        levels.Push(new Level(entry, item.Made ? item.TargetHandle : null, item.Target, item.Failed ? MirrorParent.Failed : item.Made ? MirrorParent.Ready : MirrorParent.NotMade, item.SourceStatus, item.Made ? item.SourceHandle : null));
                    }
                }

                while (levels.Count > 0)
                {
                    if (Leave(levels.Pop()) is MirrorItem failed)
                    {
                        yield return failed;
                    }
                }

                if (staging is not null && rootEntry is WalkEntry root)
                {
                    // The whole tree is there: it gets its name in one rename.
                    FileOperationException? refused = null;
                    try
                    {
                        staging.Publish();
                    }
                    catch (FileOperationException ex)
                    {
                        refused = ex;
                    }

                    if (refused is not null)
                    {
                        yield return new MirrorItem(root, MirrorItemKind.Error, destinationRoot, MirrorParent.Ready) { Error = refused };
                    }
                }
            }
            finally
            {
                if (pending is { Kind: MirrorItemKind.Directory, Made: true })
                {
                    pending.TargetHandle?.Dispose();
                    pending.SourceHandle?.Dispose();
                }

                while (levels.Count > 0)
                {
                    Level left = levels.Pop();
                    left.Handle?.Dispose();
                    left.SourceHandle?.Dispose();
                }
            }
        }

        /// <summary>
        /// Creates the item's directory in its open parent (mkdirat, with the source's permission bits)
        /// or uses an existing directory of that name, opened with O_NOFOLLOW (a symbolic link or a file
        /// of that name is refused). Throws <see cref="FileOperationException"/>; the item is then failed.
        /// </summary>
        internal void MakeDirectory(MirrorItem item)
        {
            try
            {
                SafeFileDescriptor parent = ParentOf(item);
                string name = NameOf(item);
                SafeFileDescriptor source = item.Entry.Handle ?? throw new InvalidOperationException("a walked directory has a handle");
                FileStatus st = FileStatus.Require(source, item.Source, "Cannot read");
                if (stage && item.Source == sourceRoot && FileStatus.OfAt(parent, name) is null)
                {
                    MakeStagedRoot(item, st);
                    return;
                }

                int errno = Names.TryMakeDirectory(parent, name, st.Permissions & 0x1FF);
                bool created = errno == 0;
                if (!created && errno != Errno.EEXIST)
                {
                    throw FileOperationException.FromErrno(errno, "mkdirat", item.Target, "Cannot create the directory", $"The files below '{item.Source}' were not copied.");
                }

                SafeFileDescriptor? fd = Names.TryOpenDirectory(parent, name, noFollow: true, out errno);
                if (fd is null)
                {
                    if (errno is Errno.ELOOP or Errno.ENOTDIR)
                    {
                        throw new FileOperationException(FileErrorKind.AlreadyExists, Errno.EEXIST, "mkdirat", item.Target, $"Cannot create the directory '{item.Target}': a file or symbolic link of that name exists (a link is never followed). It was left as it is, and the files below '{item.Source}' were not copied.");
                    }

                    throw DirectoryHandle.CannotCreateIn(
                        FileOperationException.FromErrno(errno, "openat", item.Target, "Cannot open the directory", $"The files below '{item.Source}' were not copied."),
                        item.Target,
                        item.Target,
                        $"copy the files below '{item.Source}' into '{item.Target}'",
                        $"The files below '{item.Source}' were not copied.");
                }

                if (created)
                {
                    session.CreatedDirectory(item.Target);
                    item.Created = true;
                    TakeNoCowState(source, fd, item);
                }

                if (FileStatus.Of(fd) is FileStatus made)
                {
                    destinationDirectories.Add((made.DevMajor, made.DevMinor, made.Inode));
                }

                try
                {
                    item.SourceHandle = DirectoryHandle.Duplicate(source, item.Source);
                    if (item.Source == sourceRoot)
                    {
                        destinationHandle = DirectoryHandle.Duplicate(fd, item.Target);
                    }
                }
                catch (FileOperationException)
                {
                    fd.Dispose();
                    throw;
                }

                item.TargetHandle = fd;
                item.SourceStatus = st;
                item.Made = true;
            }
            catch (FileOperationException)
            {
                item.Failed = true;
                throw;
            }
        }

        /// <summary>
        /// A directory this run created takes its source directory's NOCOW attribute on btrfs, as each file does: the
        /// files copied into it then match it (before: a NOCOW tree's copy warned once per file that its directory would
        /// have made it COW), and a file made there later is NOCOW or COW as in the source. Not for a directory that
        /// existed (merged into: left as it is). Where the attribute cannot be given, said once at the end.
        /// </summary>
        private void TakeNoCowState(SafeFileDescriptor source, SafeFileDescriptor made, MirrorItem item)
        {
            if (Files.FileSystemOf(made)?.Kind != FileSystemKind.Btrfs || Files.FileSystemOf(source)?.Kind != FileSystemKind.Btrfs)
            {
                return;
            }

            try
            {
                bool noCow = (InodeAttributes.Get(source, item.Source) & InodeFlags.NoCow) != 0;
                InodeFlags flags = InodeAttributes.Get(made, item.Target);
                if (((flags & InodeFlags.NoCow) != 0) == noCow)
                {
                    return;
                }

                InodeFlags wanted = noCow ? (flags | InodeFlags.NoCow) & ~(InodeFlags.Compress | InodeFlags.NoCompress) : flags & ~InodeFlags.NoCow;
                if (((InodeAttributes.Set(made, item.Target, wanted) & InodeFlags.NoCow) != 0) != noCow)
                {
                    Notices.Add($"'{item.Target}' did not take the NOCOW attribute of its source '{item.Source}' ({(noCow ? "it is COW" : "it is NOCOW")}): a file made in it later will be {(noCow ? "COW" : "NOCOW")}. Set it with Set-NoCow{(noCow ? string.Empty : " -Disable")} while it is empty.");
                }
            }
            catch (FileOperationException ex)
            {
                Notices.Add($"'{item.Target}' did not take the NOCOW attribute of its source '{item.Source}': {ex.Message}");
            }
        }

        /// <summary>What the command should tell the user: the leftovers of killed runs removed.</summary>
        internal List<string> Notices { get; } = new();

        /// <summary>The tree was built hidden and appears at the end (rather than file by file).</summary>
        internal bool Staged => staging is not null;

        /// <summary>The hidden tree got its final name (false while it is built, and when that failed).</summary>
        internal bool Published => staging?.Published ?? false;

        /// <summary>Called before a directory left gets the source's times (-Preserve): nothing may change in it after that.</summary>
        internal Action? BeforeLeaving { get; set; }

        /// <summary>
        /// The item's source file, or the file its destination name leads to, has other names: it may be a file
        /// this run is replacing (whose old inode keeps a hidden name and a lease for a moment after).
        /// </summary>
        internal bool HasOtherNames(MirrorItem item) =>
            (item.Entry.Location is FileLocation at && FileStatus.OfAt(at.Directory, at.Name) is { Links: > 1 })
            || FileStatus.OfAt(ParentOf(item), NameOf(item)) is { Links: > 1 };

        /// <summary>The clone of a file item into its (made) destination directory, checked; the caller asks, runs and disposes it.</summary>
        internal ReflinkCopy PrepareFile(MirrorItem item)
        {
            SafeFileDescriptor parent = ParentOf(item);
            DirectoryFacts facts = session.Directory(levels.Peek().TargetPath, parent);
            return ReflinkCopy.Prepare(item.Entry.Location!.Value, facts, NameOf(item), options, session);
        }

        /// <summary>
        /// A file item was copied: when its source has other names (hard links), they become hard links to
        /// this copy as the walk reaches them (<see cref="HardLinkTargetOf"/>), as cp -a keeps them.
        /// </summary>
        internal void Copied(MirrorItem item, ReflinkCopy copy, ReflinkResult result)
        {
            if (copy.SourceStatus is { Links: > 1 } st && result.Identity is FileStatus made && !linked.ContainsKey(KeyOf(st)))
            {
                linked.Add(KeyOf(st), new FirstCopy(item.Target[destinationRoot.Length..], made) { Left = st.Links - 1 });
            }
        }

        /// <summary>
        /// Where this run copied another name of the item's source file (a hard link in the source): the item is
        /// then made a hard link to that copy instead of a clone of its own, where its own destination name is free
        /// (<see cref="MakeHardLink"/>) or, when <paramref name="nameTaken"/>, in place of the file there (<see
        /// cref="PrepareLink"/>; before, such a name got a clone of its own, and the names of one file became several
        /// files). Null: clone it.
        /// </summary>
        internal string? HardLinkTargetOf(MirrorItem item, out bool nameTaken)
        {
            nameTaken = false;
            if (linked.Count == 0 || item.Entry.Location is not FileLocation at
                || FileStatus.OfAt(at.Directory, at.Name) is not { IsRegular: true, Links: > 1 } st
                || !linked.TryGetValue(KeyOf(st), out FirstCopy? first)
                || levels.Count == 0 || levels.Peek().Handle is not { } parent)
            {
                return null;
            }

            nameTaken = FileStatus.OfAt(parent, NameOf(item)) is not null; // then it is replaced by the link (PrepareLink), as a clone would replace it
            return destinationRoot + first.RelativePath;
        }

        /// <summary>
        /// The item's destination name exists, and its source is another name of a file this run copied (<see
        /// cref="HardLinkTargetOf"/>): the replacement of that name by a hard link of the copy, checked as a clone's
        /// replacement is (refused without -Force, in use, a link or a directory); the caller asks, runs and disposes it,
        /// and calls <see cref="Linked"/> once it is made. Null when the copy cannot be linked to (<paramref name="why"/>):
        /// the caller clones the file instead.
        /// </summary>
        internal ReflinkCopy? PrepareLink(MirrorItem item, out string? why)
        {
            why = null;
            FileLocation at = item.Entry.Location!.Value;
            if (FileStatus.OfAt(at.Directory, at.Name) is not { IsRegular: true, Links: > 1 } st || !linked.TryGetValue(KeyOf(st), out FirstCopy? first))
            {
                why = "the source is no longer a name of the file copied before";
                return null;
            }

            SafeFileDescriptor parent = ParentOf(item);
            DirectoryFacts facts = session.Directory(levels.Peek().TargetPath, parent);
            using SafeFileDescriptor? named = FindCopy(first);
            if (named is null)
            {
                why = $"the copy '{destinationRoot + first.RelativePath}' is gone or was replaced since it was made";
                return null;
            }

            if (Names.TryOpenForReading(named) is not SafeFileDescriptor copy)
            {
                why = $"the copy '{destinationRoot + first.RelativePath}' cannot be opened by this user to prove that nobody else has it open";
                return null;
            }

            ReflinkCopy link = ReflinkCopy.PrepareLink(at, facts, NameOf(item), copy, destinationRoot + first.RelativePath, options, session);
            try
            {
                why = link.WhyNotLink();
            }
            catch
            {
                link.Dispose();
                throw;
            }

            if (why is not null)
            {
                link.Dispose();
                return null;
            }

            return link;
        }

        /// <summary>A name was made a link of its source's copy (<see cref="PrepareLink"/>): one name fewer of it to come.</summary>
        internal void Linked(ReflinkCopy link) => Counted(link.SourceStatus);

        private void Counted(in FileStatus source)
        {
            if (linked.TryGetValue(KeyOf(source), out FirstCopy? first) && --first.Left == 0)
            {
                linked.Remove(KeyOf(source)); // every name of it is done
            }
        }

        /// <summary>
        /// Makes the item's name a hard link to this run's copy of another name of its source file. The copy
        /// is found again from the destination's top directory, each name taken without following a link,
        /// and must still be the inode this run made. Null when the link was made (<paramref name="made"/>
        /// describes it); otherwise why not, and the caller clones the file instead.
        /// </summary>
        internal string? MakeHardLink(MirrorItem item, out ReflinkResult? made)
        {
            made = null;
            var clock = System.Diagnostics.Stopwatch.StartNew();
            FileLocation at = item.Entry.Location!.Value;
            if (FileStatus.OfAt(at.Directory, at.Name) is not { IsRegular: true, Links: > 1 } st || !linked.TryGetValue(KeyOf(st), out FirstCopy? first))
            {
                return "the source is no longer a name of the file copied before";
            }

            using SafeFileDescriptor? copy = FindCopy(first);
            if (copy is null)
            {
                return $"the copy '{destinationRoot + first.RelativePath}' is gone or was replaced since it was made";
            }

            int errno = Names.TryLink(copy, ParentOf(item), NameOf(item));
            if (errno != 0)
            {
                return errno switch
                {
                    Errno.EXDEV => "it would be on another filesystem (something is mounted inside the destination)",
                    Errno.EMLINK => "the copy has as many links as the filesystem allows",
                    Errno.EEXIST => "a file of that name appeared meanwhile",
                    _ => $"the kernel refused the link ({Errno.Name(errno)})",
                };
            }

            Counted(st);

            made = new ReflinkResult
            {
                Path = item.Target,
                Source = item.Source,
                Length = 0,
                SharedBytesKnown = -1,
                Identity = first.Copy,
                Method = ReflinkMethod.HardLink,
                Duration = clock.Elapsed,
            };
            return null;
        }

        /// <summary>Recreates a symbolic link item (the same target text; never followed) in its destination directory.</summary>
        internal void MakeLink(MirrorItem item, bool replace)
        {
            FileLocation at = item.Entry.Location!.Value;
            SafeFileDescriptor parent = ParentOf(item);
            string name = NameOf(item);
            byte[] target = Names.ReadSymbolicLinkBytes(at.Directory, at.Name, item.Source); // exactly, UTF-8 or not
            if (FileStatus.OfAt(parent, name) is FileStatus existing)
            {
                if (!replace || existing.IsDirectory)
                {
                    throw new FileOperationException(FileErrorKind.AlreadyExists, Errno.EEXIST, "symlinkat", item.Target, $"Cannot create the symbolic link '{item.Target}': {(existing.IsDirectory ? "a directory" : "a file")} of that name exists, and an existing destination is never replaced without -Force{(existing.IsDirectory ? " (nor a directory by a link)" : string.Empty)}. It was left as it is.");
                }

                Names.Remove(parent, name, item.Target, "Cannot replace");
            }

            Names.MakeSymbolicLink(target, parent, name, item.Target);
            if (options.Preserve && FileStatus.OfAt(at.Directory, at.Name) is FileStatus st)
            {
                _ = Metadata.TrySetOwnerAt(parent, name, st.Uid, st.Gid); // a link's owner: best effort, as cp -a
                Metadata.SetTimesAt(parent, name, st.AccessTime, st.ModifyTime, item.Target, "Cannot set the times of");
            }
        }

        public void Dispose()
        {
            while (levels.Count > 0)
            {
                levels.Pop().Handle?.Dispose();
            }

            destinationHandle?.Dispose();

            // Not published (stopped, or a terminating error): what was built is removed.
            staging?.Dispose();
            staging = null;
            session.Staging(null);
            destinationParent.Dispose();
        }

        /// <summary>The root of a new destination: a hidden, marked directory beside its name, published at the end.</summary>
        private void MakeStagedRoot(MirrorItem item, FileStatus st)
        {
            string parentPath = System.IO.Path.GetDirectoryName(destinationRoot) is { Length: > 0 } p ? p : "/";
            staging = StagingDirectory.Create(destinationParent, parentPath, destinationRootName, st.Permissions & 0x1FF);
            foreach (string leftover in staging.RemovedLeftovers)
            {
                Notices.Add($"Removed '{parentPath.TrimEnd('/')}/{leftover}': the hidden, unfinished copy of a run that was killed (its marker proved it this module's own).");
            }

            foreach (string leftover in staging.KeptLeftovers)
            {
                Notices.Add($"Left '{parentPath.TrimEnd('/')}/{leftover}' (the hidden, unfinished copy of a run that was killed) where it is, or part of it: something is mounted on it or inside it (nothing is removed through a mount), or it changed while it was being removed. Unmount what is mounted there (findmnt -R) and remove it yourself.");
            }

            session.Staging(destinationRoot);
            session.CreatedDirectory(item.Target);
            SafeFileDescriptor fd = DirectoryHandle.Duplicate(staging.Handle, item.Target);
            if (FileStatus.Of(fd) is FileStatus made)
            {
                destinationDirectories.Add((made.DevMajor, made.DevMinor, made.Inode));
            }

            TakeNoCowState(item.Entry.Handle!, fd, item);
            rootEntry = item.Entry;
            item.Created = true;
            try
            {
                item.SourceHandle = DirectoryHandle.Duplicate(item.Entry.Handle!, item.Source);
                destinationHandle = DirectoryHandle.Duplicate(fd, item.Target);
            }
            catch (FileOperationException)
            {
                fd.Dispose();
                throw;
            }

            item.TargetHandle = fd;
            item.SourceStatus = st;
            item.Made = true;
        }

        /// <summary>
        /// Refuses a destination inside the source: the destination (or its nearest existing ancestor,
        /// where the new tree would go) and each directory above it, reached by "..", compared by
        /// device and inode with the source. A bind mount or a symbolic link cannot hide it.
        /// </summary>
        private static void ThrowIfInside(string src, in FileStatus source, string dest)
        {
            string probe = dest;
            while (FileStatus.OfPath(probe, followLinks: true) is null && probe != "/")
            {
                probe = System.IO.Path.GetDirectoryName(probe) ?? "/";
            }

            SafeFileDescriptor? fd = DirectoryHandle.TryOpen(probe, null, out _);
            try
            {
                for (int depth = 0; fd is not null && depth < 4096; depth++)
                {
                    if (FileStatus.Of(fd) is not FileStatus here)
                    {
                        return;
                    }

                    if (here.SameInode(source))
                    {
                        throw new FileOperationException(
                            FileErrorKind.DestinationInsideSource,
                            Errno.EINVAL,
                            "openat(\"..\")",
                            dest,
                            $"Cannot mirror '{src}' into '{dest}': the destination is inside the source tree ('{probe}' is '{src}' or below it), so the copy would copy itself until the paths grow too long. Choose a destination outside '{src}'. Nothing was created.");
                    }

                    SafeFileDescriptor? up = Names.TryOpenDirectory(fd, "..", noFollow: false, out _);
                    FileStatus? above = up is null ? null : FileStatus.Of(up);
                    fd.Dispose();
                    fd = up;
                    if (above is not FileStatus a || a.SameInode(here))
                    {
                        return; // the root
                    }
                }
            }
            finally
            {
                fd?.Dispose();
            }
        }

        private static (uint, uint, ulong) KeyOf(in FileStatus st) => (st.DevMajor, st.DevMinor, st.Inode);

        /// <summary>The first copy, found again from the destination's top directory (O_PATH, no link followed at any step), if it is still the inode made.</summary>
        private SafeFileDescriptor? FindCopy(FirstCopy first)
        {
            if (destinationHandle is null)
            {
                return null;
            }

            string[] names = first.RelativePath.Split('/', StringSplitOptions.RemoveEmptyEntries);
            SafeFileDescriptor? at = null;
            for (int i = 0; i < names.Length; i++)
            {
                SafeFileDescriptor? next = Names.TryName(at ?? destinationHandle, names[i]);
                at?.Dispose();
                at = next;
                FileStatus? st = at is null ? null : FileStatus.Of(at);
                bool fits = i < names.Length - 1 ? st is { IsDirectory: true } : st is FileStatus file && file.SameInode(first.Copy);
                if (!fits)
                {
                    at?.Dispose();
                    return null;
                }
            }

            return at;
        }

        private SafeFileDescriptor ParentOf(MirrorItem item) =>
            item.Source == sourceRoot ? destinationParent
            : levels.Count > 0 && levels.Peek().Handle is { } fd ? fd
            : throw new InvalidOperationException("the destination directory of '" + item.Source + "' was not made");

        private string NameOf(MirrorItem item) => item.Source == sourceRoot ? destinationRootName : item.Entry.Location!.Value.Name;

        /// <summary>The walk left a directory: with -Preserve it gets its source's owner, mode and times now (its contents are done). A failure comes back as an error item.</summary>
        private MirrorItem? Leave(Level level)
        {
            try
            {
                if (options.Preserve)
                {
                    BeforeLeaving?.Invoke();
                }

                if (options.Preserve && level.Handle is { } fd && level.SourceStatus is FileStatus st)
                {
                    uint mode = MetadataCopy.GiveOwnerIfAllowed(fd, st, level.TargetPath); // as cp -p: the owner where this user may give it
                    if (level.SourceHandle is { } sourceDirectory)
                    {
                        // The source's access and default ACLs, not those the destination's default ACL gave the new directory.
                        MetadataCopy.CopyModeAndAcl(sourceDirectory, st.WithPermissions(mode), level.SourcePath, fd, $"the directory '{level.TargetPath}'", "Its files were copied.");
                        MetadataCopy.CopyDefaultAcl(sourceDirectory, level.SourcePath, fd, $"the directory '{level.TargetPath}'", "Its files were copied.");
                    }
                    else
                    {
                        Metadata.SetMode(fd, mode, level.TargetPath, "Cannot give the mode of the source to");
                    }
                    Metadata.SetTimes(fd, st.AccessTime, st.ModifyTime, level.TargetPath, "Cannot set the times of");
                }

                // Names created, removed or renamed in the source directory while it was copied (its modification
                // time moved): a listing made meanwhile may lack some (btrfs's readdir does not show a name renamed
                // after it began) or show ones gone since; said, as tar says "file changed as we read it".
                // The directory that was read, by its descriptor (never its path again: that name may lead elsewhere by now).
                if (level.SourceStatus is FileStatus before && level.SourceHandle is { } source
                    && (FileStatus.Of(source) is not FileStatus now || now.ModifyTime != before.ModifyTime))
                {
                    return new MirrorItem(level.Entry, MirrorItemKind.Skipped, level.TargetPath, MirrorParent.Ready)
                    {
                        Message = $"'{level.SourcePath}' changed while it was copied (names were created, removed or renamed in it meanwhile): '{level.TargetPath}' may lack some of them or hold some that are gone. Run the copy again when the source is quiet (into the existing tree, what is missing is added), or copy from a read-only snapshot.",
                    };
                }

                return null;
            }
            catch (FileOperationException ex)
            {
                return new MirrorItem(level.Entry, MirrorItemKind.Error, level.TargetPath, MirrorParent.Ready) { Error = ex };
            }
            finally
            {
                level.Handle?.Dispose();
                level.SourceHandle?.Dispose();
            }
        }

        /// <summary>Where a file of several names was copied (relative to the destination's top), its copy's identity, and how many of its other names are still to come.</summary>
        private sealed record FirstCopy(string RelativePath, FileStatus Copy)
        {
            internal uint Left { get; set; }
        }

        private sealed record Level(WalkEntry Entry, SafeFileDescriptor? Handle, string TargetPath, MirrorParent State, FileStatus? SourceStatus, SafeFileDescriptor? SourceHandle)
        {
            internal string SourcePath => Entry.Path;
        }
    }
}

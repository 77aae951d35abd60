namespace Btrfs.Core
{
    using System;
    using System.Collections.Generic;
    using System.Diagnostics;
    using System.IO;
    using System.Threading;
    using Btrfs.Interop;
    using Btrfs.Kernel;

    /// <summary>
    /// New-BtrfsReflink's Core for one file: a checked plan (everything that would refuse the copy is
    /// found before anything is created), then <see cref="Run"/>. A new destination is made as an
    /// unnamed file in the destination directory, given the source's NOCOW state while it is empty (a
    /// clone between a NOCOW and a COW file is EINVAL on btrfs), cloned (FICLONE, or FICLONERANGE for
    /// a range) or, with the Copy fallback, copied, and only then named; a replaced destination is
    /// renamed over atomically. A failure leaves no file behind and an existing destination as it was.
    /// </summary>
    public sealed class ReflinkCopy : IDisposable
    {
        private readonly OpenFile source;
        private readonly ReflinkOptions options;
        private readonly List<string> warnings = new();
        private readonly string destination;
        private readonly string destinationDirectory;
        private readonly string destinationName;
        private OpenFile? existing;
        private bool sourceNoCow;
        private bool noCowStateFromDestination;
        private string? fallbackReason;
        private long destinationAvailable;
        private ReflinkSession session = null!;
        private DirectoryFacts dirFacts = null!;
        private ReflinkSession? ownSession;
        private SafeFileDescriptor? linkTo; // a hard link to this run's copy of another name of the source, instead of a clone
        private string? linkToPath;

        private ReflinkCopy(OpenFile source, string destination, ReflinkOptions options)
        {
            this.source = source;
            this.options = options;
            this.destination = System.IO.Path.GetFullPath(destination);
            destinationDirectory = System.IO.Path.GetDirectoryName(this.destination) ?? "/";
            destinationName = System.IO.Path.GetFileName(this.destination);
        }

        private ReflinkCopy(OpenFile source, DirectoryFacts directory, string name, ReflinkOptions options)
        {
            this.source = source;
            this.options = options;
            dirFacts = directory;
            destinationDirectory = directory.Path;
            destinationName = name;
            destination = directory.Path == "/" ? "/" + name : directory.Path + "/" + name;
        }

        /// <summary>The source file.</summary>
        public string Source => source.Path;

        /// <summary>The destination file.</summary>
        public string Destination => destination;

        /// <summary>The source as it was opened (its identity and links: a tree mirror keeps hard links by it).</summary>
        internal FileStatus SourceStatus => source.Status;

        /// <summary>The destination exists and will be replaced (or, with a range, written into).</summary>
        public bool DestinationExists => existing is not null;

        /// <summary>Bytes to clone or copy.</summary>
        public long Length { get; private set; }

        /// <summary>Bytes of data (not holes) in the range: what a copy reads and writes (SEEK_DATA/SEEK_HOLE; asked when called).</summary>
        internal long DataBytes => Deduplicator.DataBytes(source, options.SourceOffset ?? 0, Length);

        /// <summary>With <see cref="ReflinkMethod.Copy"/>: the free space the copy needs (its data and what it preallocates again), and of it, what the source has preallocated past its end.</summary>
        internal long CopyNeedsBytes { get; private set; }

        /// <inheritdoc cref="CopyNeedsBytes"/>
        internal long CopyPreallocatedPastEndBytes { get; private set; }

        /// <summary>Extents in the source range (the clone's cost grows with them).</summary>
        public long ExtentCount { get; private set; }

        /// <summary>Whether <see cref="ExtentCount"/> was counted (only for a source that could have many extents: elsewhere 0, not counted).</summary>
        public bool ExtentsCounted { get; private set; }

        /// <summary>Reflink, or Copy when the fallback applies; HardLink for a name made a link of this run's copy of another name of the source.</summary>
        public ReflinkMethod Method => linkTo is not null ? ReflinkMethod.HardLink : fallbackReason is null ? ReflinkMethod.Reflink : ReflinkMethod.Copy;

        /// <summary>With <see cref="ReflinkMethod.HardLink"/>: the copy the name is made a link of.</summary>
        internal string? LinkTarget => linkToPath;

        /// <summary>Things the user should know that do not stop the copy.</summary>
        public IReadOnlyList<string> Warnings => warnings;

        /// <summary>
        /// Opens the source and checks the destination. Throws <see cref="FileOperationException"/>
        /// for every refusal: the destination exists (without Force) or is the source, immutable,
        /// append-only, read-only or an active swapfile; the source is an active swapfile; the
        /// filesystems differ or cannot share extents (without the Copy fallback); the NOCOW states of
        /// an existing destination and the source differ (without the Copy fallback); a range is not
        /// aligned, runs past the source's end or overlaps itself in one file.
        /// </summary>
        public static ReflinkCopy Prepare(string source, string destination, ReflinkOptions options)
        {
            var own = new ReflinkSession();
            try
            {
                ReflinkCopy copy = Prepare(source, destination, options, own);
                copy.ownSession = own;
                return copy;
            }
            catch
            {
                own.Dispose();
                throw;
            }
        }

        /// <summary>
        /// As <see cref="Prepare(string, string, ReflinkOptions)"/>, within a session that reads the
        /// facts many copies share once. <paramref name="fromWalk"/>: the source is a regular file the
        /// tree walker just listed.
        /// </summary>
        public static ReflinkCopy Prepare(string source, string destination, ReflinkOptions options, ReflinkSession session, bool fromWalk = false)
        {
            ArgumentNullException.ThrowIfNull(options);
            ArgumentNullException.ThrowIfNull(session);
            OpenFile src;
            if (fromWalk)
            {
                src = OpenFile.Open(source, OpenOptions.KnownRegular, session.FileSystems);
            }
            else
            {
                // Links on the way, and the source itself as a link, followed only where root or this user made them.
                (SafeFileDescriptor dir, string name) = DirectoryHandle.ResolveFollowingTrustedLinks(source, Metadata.FileSystemUserId, (at, why) => ThroughAnotherUsersLink(source, at, why));
                src = OpenFile.Open(new FileLocation(dir, name, source), OpenOptions.None, session.FileSystems, ownDirectory: true);
            }

            return Checked(new ReflinkCopy(src, destination, options) { session = session });
        }

        /// <summary>The refusal of a source <paramref name="source"/> whose way passes <paramref name="at"/>, another user's symbolic link.</summary>
        private static FileOperationException ThroughAnotherUsersLink(string source, string at, string why) => new(
            FileErrorKind.IsSymbolicLink,
            Errno.ELOOP,
            "openat",
            source,
            $"Cannot copy '{source}': '{at}' {why}, so what is copied would be whatever file that user makes it lead to (one only you may read, copied where that user can read it). Nothing was copied. Give the path it leads to if that is the file you mean.");

        /// <summary>
        /// For a tree mirror: the source as the walker found it (opened relative to its directory) and
        /// the destination as a name in a destination directory the mirror has open.
        /// </summary>
        internal static ReflinkCopy Prepare(FileLocation source, DirectoryFacts destinationDirectory, string name, ReflinkOptions options, ReflinkSession session)
        {
            OpenFile src = OpenFile.Open(source, OpenOptions.KnownRegular, session.FileSystems);
            bool? directoryNoCow = null;
            try
            {
                directoryNoCow = InodeAttributes.TryGet(source.Directory, source.Path) is InodeFlags flags ? (flags & InodeFlags.NoCow) != 0 : null;
            }
            catch (FileOperationException)
            {
                // Unreadable: the warning is said as before.
            }

            return Checked(new ReflinkCopy(src, destinationDirectory, name, options) { session = session, sourceDirectoryNoCow = directoryNoCow, inTree = true });
        }

        /// <summary>
        /// For a tree mirror: the item's destination name, which exists, made a hard link of <paramref name="copyMade"/>
        /// (this run's copy of another name of the source file, opened; taken over), in place of the file it names, with
        /// every check and the grace of a replacement (the name must be free to replace: -Force, not in use, not a link
        /// or a directory). Nothing is cloned.
        /// </summary>
        internal static ReflinkCopy PrepareLink(FileLocation source, DirectoryFacts destinationDirectory, string name, SafeFileDescriptor copyMade, string copyPath, ReflinkOptions options, ReflinkSession session)
        {
            OpenFile src;
            try
            {
                src = OpenFile.Open(source, OpenOptions.KnownRegular, session.FileSystems);
            }
            catch
            {
                copyMade.Dispose();
                throw;
            }

            return Checked(new ReflinkCopy(src, destinationDirectory, name, options) { session = session, inTree = true, linkTo = copyMade, linkToPath = copyPath });
        }

        /// <summary>
        /// A link (<see cref="PrepareLink"/>) would change what the name is beyond its data, where a clone would not: why
        /// (the caller clones instead), or null. The name must be on the copy's filesystem and subvolume (a link cannot
        /// cross them: EXDEV), and the file it names must have the copy's owner, group, mode and access ACL (a clone keeps
        /// the replaced file's; -Preserve gives both the source's) and NOCOW state (a clone refuses to change it).
        /// </summary>
        internal string? WhyNotLink()
        {
            if (linkTo is null || existing is null)
            {
                return null;
            }

            FileStatus copy = FileStatus.Require(linkTo, linkToPath!, "Cannot examine");
            if (FileStatus.Of(dirFacts.Handle) is not FileStatus dir || dir.DevMajor != copy.DevMajor || dir.DevMinor != copy.DevMinor || dir.MountId != copy.MountId)
            {
                return "its directory is on another filesystem, subvolume or mount than the copy, which a hard link cannot cross";
            }

            FileStatus was = existing.Status;
            if (!options.Preserve && (was.Uid != copy.Uid || was.Gid != copy.Gid || was.Permissions != copy.Permissions
                || !(Xattrs.Get(existing.Handle, MetadataCopy.AccessAcl, destination) ?? Array.Empty<byte>()).AsSpan().SequenceEqual(Xattrs.Get(linkTo, MetadataCopy.AccessAcl, linkToPath!) ?? Array.Empty<byte>())))
            {
                return "the file there has another owner, group, mode or access ACL than the copy, which replacing it keeps (a link would change them)";
            }

            if (dirFacts.FileSystem.Kind == FileSystemKind.Btrfs
                && ((InodeAttributes.Get(existing.Handle, destination) ^ InodeAttributes.Get(linkTo, linkToPath!)) & InodeFlags.NoCow) != 0)
            {
                return "the file there is NOCOW and the copy is not, or the other way round, which replacing it never changes";
            }

            return null;
        }

        private static ReflinkCopy Checked(ReflinkCopy copy)
        {
            try
            {
                copy.Check();
                return copy;
            }
            catch
            {
                copy.Dispose();
                throw;
            }
        }

        /// <summary>Makes the copy. Throws <see cref="FileOperationException"/>; nothing is left behind on failure.</summary>
        public ReflinkResult Run(CancellationToken cancel = default)
        {
            return Start(cancel, null, out _); // without a settler the grace is waited out there
        }

        /// <summary>
        /// Makes the copy; a replaced destination is then in its grace (<see cref="PendingReplacement"/>):
        /// with a <paramref name="settler"/> the grace is waited out on its thread and <paramref name="pending"/>
        /// is returned (the caller calls <see cref="PendingReplacement.Finish"/> before it trusts the result, and
        /// disposes this copy only after that: the replaced file's lease is on its descriptor); without one the
        /// grace is waited out here. Throws <see cref="FileOperationException"/>; nothing is left behind on failure.
        /// </summary>
        internal ReflinkResult Start(CancellationToken cancel, GraceSettler? settler, out PendingReplacement? pending)
        {
            pending = null;
            var clock = Stopwatch.StartNew();
            cancel.ThrowIfCancellationRequested();
            SafeFileDescriptor dir = dirFacts.Handle;
            FileStatus? accessFrom = null; // the replaced file's status its access rules were copied from
            long sharedBytes;
            FileStatus? identity = null;
            if (options.IsRange && existing is not null)
            {
                sharedBytes = CloneRangeInPlace();
            }
            else if (existing is null && linkTo is null && session.IsStaged(destinationDirectory))
            {
                // Inside a tree built hidden and published whole at the end (as cp does it, plus one
                // rename): the name is created directly, and removed again if the clone fails.
                SafeFileDescriptor fd = Names.TryCreateExclusive(dir, destinationName, (int)(source.Status.Permissions & 0x1FF), out int errno)
                    ?? throw FileOperationException.FromErrno(errno, "openat(O_CREAT|O_EXCL)", destination, "Cannot create", "Nothing was left behind.");
                using (fd)
                {
                    try
                    {
                        SetNoCowState(fd);
                        Fill(fd, cancel);
                        if (options.Preserve)
                        {
                            MetadataCopy.Copy(source, fd, $"the copy '{destination}'", InodeAttributes.Get(fd, destination), InodeFlags.None, includeXattrs: false, ownerIfAllowed: true);
                        }

                        WriteBackCopiedData(fd);
                        identity = FileStatus.Of(fd);
                    }
                    catch
                    {
                        _ = Names.TryRemove(dir, destinationName);
                        throw;
                    }
                }

                sharedBytes = -1; // measured when asked (ReflinkResult.SharedBytes)
            }
            else
            {
                // Created with the source's permission bits (the umask applies, as for any new file); or, for a link, the
                // copy made (which gets the name as a new copy would, its replacement's checks and grace the same).
                TemporaryFile temp = linkTo is not null
                    ? TemporaryFile.LinkTo(dir, Files.Duplicate(linkTo, linkToPath!), null)
                    : TemporaryFile.Create(dir, destinationDirectory, destinationName, forceNamed: false, mode: (int)(source.Status.Permissions & 0x1FF));
                PendingReplacement? begun = null;
                try
                {
                    // What a run killed in the grace after such a replacement left here (the file it replaced), removed
                    // before the replaced file's access rules and change time are taken: removing it takes that run's
                    // marks off the file under the name (before: done after, so the file looked changed while the copy
                    // was made, and the run was refused; a hostile test).
                    if (existing is not null && session.FirstReplaceIn(destinationDirectory))
                    {
                        foreach (StaleFile stale in temp.RemoveStale())
                        {
                            warnings.Add(stale.Describe(destinationDirectory));
                        }
                    }

                    if (linkTo is null)
                    {
                        SetNoCowState(temp.Handle);
                        Fill(temp.Handle, cancel);
                        if (options.Preserve)
                        {
                            MetadataCopy.Copy(source, temp.Handle, $"the copy '{destination}'", InodeAttributes.Get(temp.Handle, destination), InodeFlags.None, includeXattrs: false, ownerIfAllowed: true);
                        }
                        else if (existing is not null)
                        {
                            accessFrom = KeepAccessRules(existing, temp.Handle);
                        }

                        WriteBackCopiedData(temp.Handle);
                    }

                    identity = FileStatus.Of(temp.Handle);

                    // No fsync per file: the name appears only with the clone complete (one transaction on
                    // btrfs and xfs), so a crash leaves the file whole or absent; Flush syncs once at the end.
                    cancel.ThrowIfCancellationRequested();
                    if (existing is not null)
                    {
                        begun = temp.BeginReplace(existing, destinationName, destination, "replace {0}", options.AssumeNotInUse, () =>
                        {
                            if (FileStatus.OfAt(dir, destinationName) is not FileStatus now || !now.SameInode(existing.Status))
                            {
                                throw new FileOperationException(FileErrorKind.ChangedDuringCopy, 0, "statx", destination, $"Cannot replace '{destination}': another file took its name meanwhile. It was left as it is; {temp.Fate}.");
                            }

                            if (accessFrom is FileStatus was && !now.ChangeTime.Equals(was.ChangeTime))
                            {
                                throw new FileOperationException(FileErrorKind.ChangedDuringCopy, 0, "statx", destination, $"Cannot replace '{destination}': it changed (its owner, mode, ACL or data) while the copy was made, and the copy carries what it was before. It was left as it is; the new copy was removed. Run the command again.");
                            }
                        },
                        null,
                        ownsThis: true);
                        if (settler is not null && !begun.IsSettled)
                        {
                            settler.Add(begun);
                            pending = begun;
                        }
                        else
                        {
                            using (begun)
                            {
                                begun.Finish();
                            }
                        }
                    }
                    else
                    {
                        temp.LinkAsNew(destinationName, destination);
                    }
                }
                finally
                {
                    if (begun is null)
                    {
                        temp.Dispose(); // handed over, it goes when its replacement settles
                    }
                }

                sharedBytes = -1; // measured when asked (ReflinkResult.SharedBytes)
            }

            session.Wrote(dirFacts);
            return new ReflinkResult
            {
                Path = destination,
                Source = source.Path,
                Length = Length,
                SharedBytesKnown = sharedBytes,
                Identity = identity,
                CanShare = dirFacts.FileSystem.Kind is FileSystemKind.Btrfs or FileSystemKind.Xfs or FileSystemKind.Ext4,
                Method = Method,
                Duration = clock.Elapsed,
            };
        }

        /// <summary>
        /// A copy (the Copy fallback) is written back before it gets its name: a clone is metadata that the
        /// filesystem orders before the name, copied data is not, and a crash must never show a short file.
        /// </summary>
        private void WriteBackCopiedData(SafeFileDescriptor fd)
        {
            if (Method == ReflinkMethod.Copy)
            {
                Files.Sync(fd, destination, "Cannot write back the copy", "Nothing was left behind.");
            }
        }

        /// <inheritdoc/>
        public void Dispose()
        {
            existing?.Dispose();
            source.Dispose();
            linkTo?.Dispose();
            ownSession?.Dispose();
        }

        private void Check()
        {
            if (session.Swaps.Contains(source.Status))
            {
                FileGuards.ThrowIfSwapfile(source, "clone");
            }

            if (source.FileSystem.Kind is FileSystemKind.Proc or FileSystemKind.Sysfs or FileSystemKind.Debugfs or FileSystemKind.Tracefs
                or FileSystemKind.Securityfs or FileSystemKind.Efivarfs or FileSystemKind.Cgroup or FileSystemKind.Cgroup2 or FileSystemKind.Bpf)
            {
                // Their files are made as they are read, and their sizes (mostly 0) say nothing of that: a copy of the
                // size given was an empty file, reported a success (a hostile review: /proc/self/status).
                throw new FileOperationException(
                    FileErrorKind.NotSupported,
                    0,
                    "fstatfs",
                    source.Path,
                    $"Cannot copy '{source.Path}': it is a file of {source.FileSystem.DisplayName}, whose content is made as it is read, and whose size ({source.Size} bytes) says nothing of it. Read it instead (cp, Get-Content). Nothing was created.");
            }

            CheckName();
            if (dirFacts is null)
            {
                dirFacts = session.Directory(destinationDirectory);
            }
            CheckExisting();
            if (linkTo is not null)
            {
                return; // a link of a copy made: no data goes anywhere
            }

            CheckFileSystems();
            CheckNoCowStatesFit(dirFacts.NoCow);
            if (existing is not null && !options.IsRange && options.MountsLookedForAtExchange && Method == ReflinkMethod.Copy)
            {
                // A copy of the data comes first: a bind mount that refuses the exchange is looked for before it, too.
                FileGuards.ThrowIfMounted(existing, "replace {0}", options.AssumeNotInUse);
            }

            CheckRange();
            // Every extent holds at least one block: a small source cannot have many (no FIEMAP call needed).
            bool couldHaveMany = Length / 4096 > options.ManyExtents;
            ExtentsCounted = couldHaveMany && source.FileSystem.Kind is FileSystemKind.Btrfs or FileSystemKind.Xfs or FileSystemKind.Ext4;
            ExtentCount = ExtentsCounted
                ? Fiemap.Count(source, (ulong)(options.SourceOffset ?? 0), (ulong)Math.Max(1, Length))
                : 0;
            if (Method == ReflinkMethod.Reflink && ExtentCount > options.ManyExtents)
            {
                warnings.Add($"'{source.Path}' has {ExtentCount:N0} extents: a clone takes time in proportion to them (minutes for millions). Measure-Fragmentation and Invoke-BtrfsDefrag can reduce them first.");
            }

            if (Method == ReflinkMethod.Copy)
            {
                long needed = CopyNeedsBytes = DataCopy.SpaceNeeded(source, DataCopy.DataBytes(source.Handle, source.Size, source.Path), out long beyond);
                CopyPreallocatedPastEndBytes = beyond;
                destinationAvailable = dirFacts.AvailableBytes(needed);
                long available = destinationAvailable;
                if (needed > available)
                {
                    throw new FileOperationException(FileErrorKind.InsufficientSpace, Errno.ENOSPC, "statfs", destination, $"Cannot copy '{source.Path}' to '{destination}': the copy needs {SizeFormatter.Format(needed)}{DataCopy.PreallocatedPastEndNote(beyond, "the source")} and only {SizeFormatter.Format(available)} is free. Nothing was created.");
                }
            }
        }

        /// <summary>A name the kernel would refuse (ENAMETOOLONG) is refused before anything is created or cloned.</summary>
        private void CheckName()
        {
            int bytes = System.Text.Encoding.UTF8.GetByteCount(destinationName);
            if (bytes > 255 || destinationName.Length == 0 || destinationName.Contains('/') || System.Text.Encoding.UTF8.GetByteCount(destination) >= 4096)
            {
                string why = bytes > 255 ? $"its name is {bytes} bytes long in UTF-8 and a file name may have at most 255 (NAME_MAX)"
                    : destinationName.Length == 0 || destinationName.Contains('/') ? "it names no file (it ends with '/')"
                    : "the path is longer than the 4,095 bytes the kernel accepts (PATH_MAX)";
                bool noName = bytes <= 255 && (destinationName.Length == 0 || destinationName.Contains('/'));
                throw new FileOperationException(FileErrorKind.InvalidArgument, noName ? Errno.EINVAL : Errno.ENAMETOOLONG, "linkat", destination, $"Cannot create '{destination}': {why}. {(noName ? "Give the new file's name, or an existing directory to copy into" : "Give a shorter name")}. Nothing was created.");
            }
        }

        private void CheckExisting()
        {
            if (session.IsNewDirectory(destinationDirectory))
            {
                return; // this run created the directory: nothing can be in it but what this run put there
            }

            if (FileStatus.OfAt(dirFacts.Handle, destinationName) is not FileStatus st)
            {
                return;
            }

            // A tree's destination that is a link, or a directory, is said as what it is here (before: the advice for a path
            // given to read, "give its path instead", "pass the regular files inside it"; a hostile review of tree merges).
            if (st.IsSymbolicLink && !inTree)
            {
                throw OpenFile.SymbolicLinkRefused(destination); // the path given: where it leads is said
            }

            if (st.IsSymbolicLink)
            {
                string? target = Files.RealPath(destination);
                throw new FileOperationException(
                    FileErrorKind.IsSymbolicLink,
                    Errno.ELOOP,
                    "stat",
                    destination,
                    $"Cannot {(options.IsRange ? "clone into" : "put a copy of '" + source.Path + "' at")} '{destination}': it is a symbolic link{(target is null ? " that leads nowhere" : $" (to '{target}')")}, and a link is never followed or replaced here. It was left as it is; remove it to copy the file there.");
            }

            if (st.IsDirectory)
            {
                throw new FileOperationException(
                    FileErrorKind.IsDirectory,
                    Errno.EISDIR,
                    "stat",
                    destination,
                    $"Cannot {(options.IsRange ? "clone into" : "put a copy of the file '" + source.Path + "' at")} '{destination}': it is a directory, and a directory is never replaced by a file. It was left as it is; remove or rename it to copy the file there.");
            }

            if (!options.IsRange)
            {
                FileGuards.RefuseSameFile(source, st, destination, "clone {0} onto itself");
            }

            if (!options.Force)
            {
                throw new FileOperationException(FileErrorKind.AlreadyExists, Errno.EEXIST, "stat", destination, $"Cannot create '{destination}': it exists, and an existing destination is never replaced without -Force. It was left as it is.");
            }

            existing = OpenFile.Open(new FileLocation(dirFacts.Handle, destinationName, destination), OpenOptions.NoFollow);
            FileGuards.ThrowIfUnchangeable(existing, InodeAttributes.Get(existing.Handle, destination), options.IsRange ? "clone into {0}" : "replace {0}");
            if (!options.IsRange)
            {
                // -Force replaces an existing file, never one in use: a process that has it open would
                // write on into the old inode and lose its writes (-Force does not override this).
                FileGuards.ThrowIfDirectoryKeepsItsNames(existing, "replace {0}");
                FileGuards.ThrowIfInUse(existing, "replace {0}", options.AssumeNotInUse, mounts: !options.MountsLookedForAtExchange);
                if (existing.Status.Links > 1)
                {
                    // In a tree whose source file has other names too, those of the mirror are made links of the new file.
                    warnings.Add(inTree && source.Status.Links > 1
                        ? $"'{destination}' has {existing.Status.Links} hard links: this name gets {(linkTo is null ? "the new copy" : $"a link of '{linkToPath}'")}; those of its other names that mirror other names of '{source.Path}' are made links of it as the walk reaches them, and any others keep the old data."
                        : $"'{destination}' has {existing.Status.Links} hard links: only this name gets the new file; the other {existing.Status.Links - 1} keep the old data.");
                }
            }
        }

        /// <summary>
        /// A replacement keeps the access rules of the file it replaces, as they are now: owner and group,
        /// mode and POSIX access ACL (as rsync treats an updated file; -Preserve takes the source's, as cp -p
        /// does), so replacing a file never makes it readable by more users. Where only root could keep the
        /// owner, the caller owns the new file (as with rsync or mv), without setuid and setgid bits, and a
        /// warning says so. Returns the replaced file's status it copied from: the exchange is refused if the
        /// file changed after that (a chmod meanwhile would otherwise be undone).
        /// </summary>
        private FileStatus KeepAccessRules(OpenFile replaced, SafeFileDescriptor replacement)
        {
            FileStatus st = FileStatus.Require(replaced.Handle, destination, "Cannot read the owner and mode of");
            uint mode = st.Permissions;
            int errno = Metadata.TrySetOwner(replacement, st.Uid, st.Gid);
            if (errno != 0)
            {
                if (errno is not (Errno.EPERM or Errno.EINVAL))
                {
                    throw FileOperationException.FromErrno(errno, "fchown", destination, "Cannot give the replacement the owner and group of", $"'{destination}' was left as it is.");
                }

                bool groupKept = Metadata.TrySetOwner(replacement, uint.MaxValue, st.Gid) == 0;
                mode &= ~0xC00u; // no setuid or setgid bits on a file whose owner changed
                warnings.Add($"'{destination}' belonged to uid {st.Uid}{(groupKept ? string.Empty : $", gid {st.Gid}")}; only root can give the new file to them, so it is now this user's (uid {Metadata.FileSystemUserId}). Its mode{(st.Permissions != mode ? " (without setuid and setgid bits)" : string.Empty)} and access ACL were kept.");
            }

            MetadataCopy.CopyModeAndAcl(replaced.Handle, st with { Mode = (ushort)((st.Mode & ~0xFFF) | (int)mode) }, destination, replacement, "the replacement", $"'{destination}' was left as it is.");
            return st;
        }

        private void CheckFileSystems()
        {
            MountEntry? a = session.Mounts.For(source);
            MountEntry? b = dirFacts.Mount;
            bool sameSuperblock = a is null || b is null || (a.Major == b.Major && a.Minor == b.Minor);
            if (!sameSuperblock)
            {
                Refuse(
                    FileErrorKind.CrossFileSystem,
                    Errno.EXDEV,
                    $"Cannot clone '{source.Path}' to '{destination}': they are on different filesystems ({a!.MountPoint} and {b!.MountPoint}), and extents can only be shared within one filesystem (EXDEV). Use -Fallback Copy to copy the data instead, or Copy-Item.",
                    sameForFileSystem: true);
                return;
            }

            if (source.FileSystem.Kind is not (FileSystemKind.Btrfs or FileSystemKind.Xfs))
            {
                Refuse(
                    FileErrorKind.ReflinkNotSupported,
                    Errno.EOPNOTSUPP,
                    $"Cannot clone '{source.Path}': {source.FileSystem.DisplayName} cannot share extents between files (reflinks work on btrfs and on xfs made with reflink=1). Use -Fallback Copy to copy the data instead.",
                    sameForFileSystem: true);
            }
        }

        /// <summary>
        /// btrfs: the source's NOCOW state (NOCOW files have no checksums, COW files do; the two cannot
        /// share extents) against an existing destination's (refused when they differ, unless copying),
        /// or against what a new file would inherit from <paramref name="dirNoCow"/> (a warning).
        /// </summary>
        private void CheckNoCowStatesFit(bool dirNoCow)
        {
            if (source.FileSystem.Kind != FileSystemKind.Btrfs)
            {
                return;
            }

            sourceNoCow = (InodeAttributes.Get(source.Handle, source.Path) & InodeFlags.NoCow) != 0;
            if (dirFacts.FileSystem.Kind != FileSystemKind.Btrfs)
            {
                // A copy to another filesystem: only btrfs has the attribute (xfs, ext4 and tmpfs write in place anyway).
                if (sourceNoCow && existing is null)
                {
                    warnings.Add($"'{destination}' is not NOCOW like its source: {dirFacts.FileSystem.DisplayName} has no NOCOW attribute (it writes data in place anyway).");
                }

                return;
            }

            if (existing is not null)
            {
                bool destNoCow = (InodeAttributes.Get(existing.Handle, destination) & InodeFlags.NoCow) != 0;
                if (destNoCow != sourceNoCow && fallbackReason is null)
                {
                    string which = sourceNoCow ? $"the source '{source.Path}' is NOCOW and the destination is not" : $"the destination '{destination}' is NOCOW and the source is not";
                    Refuse(
                        FileErrorKind.ChecksumClassMismatch,
                        Errno.EINVAL,
                        $"Cannot clone '{source.Path}' into '{destination}': {which}, and btrfs cannot share extents between a NOCOW file (no checksums) and a COW file. Remove the destination first (a new copy gets the source's NOCOW state), make them alike with ConvertTo-NoCow or ConvertFrom-NoCow, or use -Fallback Copy. The destination was left exactly as it was.");
                }

                noCowStateFromDestination = destNoCow != sourceNoCow;
                return;
            }

            // Not where the source differs from its own directory in the same way (a COW file in a NOCOW directory copied
            // into a NOCOW directory): the copy is as its source is, nothing to say (a hostile review: a tree copy, whose
            // directories take their sources' NOCOW state, warned once per COW file of a NOCOW directory).
            if (dirNoCow != sourceNoCow && Method == ReflinkMethod.Reflink && sourceDirectoryNoCow != dirNoCow)
            {
                warnings.Add(sourceNoCow
                    ? $"'{destination}' is NOCOW like its source: no checksums, no compression (its directory would have made it COW)."
                    : $"'{destination}' is COW like its source: checksummed and compressible, although its directory is NOCOW.");
            }
        }

        /// <summary>
        /// The NOCOW attribute of the source's directory, read where the walker found the source (a tree's copy only, whose
        /// directories mirror the source's; null for a single file, which is still told it stays COW in a NOCOW directory,
        /// the classic surprise: a review).
        /// </summary>
        private bool? sourceDirectoryNoCow;

        /// <summary>A file of a tree copy (-Recurse): its destination was not named by the user but mirrors the source's place.</summary>
        private bool inTree;

        private void CheckRange()
        {
            long size = source.Size;
            if (!options.IsRange)
            {
                Length = size;
                return;
            }

            long so = options.SourceOffset ?? 0;
            long len = options.Length ?? (size - so);
            long dof = options.DestinationOffset ?? so;
            if (options.Length is null && so >= size && so >= 0)
            {
                // Without -Length the range is the rest of the file, of which there is none (before: "Cannot clone
                // -1073641824 bytes", the rest's length computed; a hostile review).
                throw new FileOperationException(FileErrorKind.InvalidArgument, Errno.EINVAL, "FICLONERANGE", destination, size == 0
                    ? $"Cannot clone a range of '{source.Path}': it is empty, so there is nothing to clone. Nothing was changed."
                    : $"Cannot clone from byte {so} of '{source.Path}': the file has {size} bytes, so nothing is left from there. Give a -SourceOffset below {size}. Nothing was changed.");
            }

            if (so < 0 || dof < 0 || len <= 0 || so > size || len > size - so)
            {
                // Compared without adding (an offset near the largest one plus a length wrapped around: the kernel's EINVAL
                // was then explained as a NOCOW mismatch; a hostile test).
                throw new FileOperationException(FileErrorKind.InvalidArgument, Errno.EINVAL, "FICLONERANGE", destination, $"Cannot clone {len} bytes from byte {so} of '{source.Path}': the file has {size} bytes. Give a range inside it.");
            }

            if (len > long.MaxValue - dof)
            {
                throw new FileOperationException(FileErrorKind.InvalidArgument, Errno.EINVAL, "FICLONERANGE", destination, $"Cannot clone {len} bytes to byte {dof} of '{destination}': the range would end past the largest offset a file can have. Give a smaller -DestinationOffset.");
            }

            long block = BlockSize();
            bool endsAtEof = so + len == size;
            long destSize = existing?.Size ?? 0;
            if (so % block != 0 || dof % block != 0 || (len % block != 0 && !(endsAtEof && dof + len >= destSize)))
            {
                string eof = endsAtEof ? " (the range ends at the source's end, but would leave a partial block in the middle of the destination)" : " (only a range that ends at the source's end may have an unaligned length)";
                throw new FileOperationException(
                    FileErrorKind.InvalidArgument,
                    Errno.EINVAL,
                    "FICLONERANGE",
                    destination,
                    $"Cannot clone the range: -SourceOffset {so}, -DestinationOffset {dof} and -Length {len} must be multiples of the filesystem's block size, {block} bytes{(len % block != 0 ? eof : string.Empty)}. Nothing was changed.");
            }

            if (existing is not null && existing.Status.SameInode(source.Status) && so < dof + len && dof < so + len)
            {
                throw new FileOperationException(FileErrorKind.InvalidArgument, Errno.EINVAL, "FICLONERANGE", destination, $"Cannot clone bytes {so}..{so + len} of '{source.Path}' to {dof}..{dof + len} of the same file: the ranges overlap. Choose ranges that do not overlap. Nothing was changed.");
            }

            Length = len;
        }

        /// <summary>
        /// Reflink impossible: with the Copy fallback a warning and a copy, else the error (<paramref name="sameForFileSystem"/>:
        /// the filesystems' own refusal, the same for every file of a tree on one filesystem).
        /// </summary>
        private void Refuse(FileErrorKind kind, int errno, string message, bool sameForFileSystem = false)
        {
            if (options.Fallback == ReflinkFallback.Copy)
            {
                fallbackReason = message;
                warnings.Add($"'{destination}' is a full copy, not a reflink: " + FirstSentenceReason(message));
                return;
            }

            throw new FileOperationException(kind, errno, "FICLONE", destination, message) { SameForFileSystem = sameForFileSystem };
        }

        private static string FirstSentenceReason(string message)
        {
            int colon = message.IndexOf(": ", StringComparison.Ordinal);
            int dot = message.IndexOf(". ", colon + 2, StringComparison.Ordinal);
            return colon > 0 && dot > colon ? message[(colon + 2)..(dot + 1)] : message;
        }

        private long BlockSize() => Clone.BlockSize(source.Handle);

        /// <summary>The new file's NOCOW state, set while it is empty: the source's (or, for a replaced destination that differs and is copied, the destination's).</summary>
        private void SetNoCowState(SafeFileDescriptor fd)
        {
            if (source.FileSystem.Kind != FileSystemKind.Btrfs || dirFacts.FileSystem.Kind != FileSystemKind.Btrfs)
            {
                return;
            }

            bool noCow = noCowStateFromDestination ? !sourceNoCow : sourceNoCow;
            if (noCow == dirFacts.NoCow && !(noCow && dirFacts.Compress))
            {
                return; // what the new file inherited from its directory is already right
            }

            InodeFlags flags = InodeAttributes.Get(fd, destination);
            InodeFlags wanted = noCow ? (flags | InodeFlags.NoCow) & ~InodeFlags.Compress : flags & ~InodeFlags.NoCow;
            if (wanted != flags && ((InodeAttributes.Set(fd, destination, wanted) & InodeFlags.NoCow) != 0) != noCow)
            {
                throw new FileOperationException(FileErrorKind.NoCowNotApplied, 0, "FS_IOC_SETFLAGS", destination, $"Cannot create '{destination}': the new empty file did not take the NOCOW state of its source. Nothing was created.");
            }
        }

        private void Fill(SafeFileDescriptor fd, CancellationToken cancel)
        {
            if (Method == ReflinkMethod.Copy)
            {
                if (options.IsRange)
                {
                    throw new FileOperationException(FileErrorKind.InvalidArgument, Errno.EINVAL, "copy", destination, "A range is cloned or nothing: -Fallback Copy copies whole files only. Nothing was created.");
                }

                DataCopy.Copy(source, fd, destination, source.Size, null, cancel);

                // A copy is no snapshot: written, grown or shrunk meanwhile, it holds a mix of before and after (shrunk:
                // zeros the source never held, as far as it was). An error, and the caller removes the copy (before: a
                // success, a file of the old size with a hole for its end; a hostile test).
                FileStatus now = source.Restat();
                if (!now.SameContentStamp(source.Status))
                {
                    string what = now.Size != source.Status.Size ? $"its size went from {source.Status.Size} to {now.Size} bytes"
                        : now.ModifyTime != source.Status.ModifyTime ? "it was written to (its modification time moved)"
                        : "its change time moved: written to with its modification time set back, or its mode, owner, links or attributes changed";
                    throw new FileOperationException(
                        FileErrorKind.ChangedDuringCopy,
                        0,
                        "statx",
                        source.Path,
                        $"Cannot copy '{source.Path}' to '{destination}': the source changed while it was copied ({what}), so the copy would hold some of it as it was and some as it is. The copy was removed{(existing is null ? string.Empty : $"; '{destination}' was left as it was")}. Copy it when nothing writes to it, or from a read-only snapshot.");
                }

                return;
            }

            int rc = options.IsRange ? CloneRange(fd) : Clone.TryWhole(source.Handle, fd);
            if (rc != 0)
            {
                throw CloneFailure(rc);
            }
        }

        private long CloneRangeInPlace()
        {
            using SafeFileDescriptor fd = Names.OpenForWriting(dirFacts.Handle, destinationName, destination);
            int rc = CloneRange(fd);
            if (rc != 0)
            {
                throw CloneFailure(rc);
            }

            return Fiemap.Shared(fd, destination).Bytes;
        }

        /// <summary>The one range clone -SourceOffset, -Length and -DestinationOffset describe: 0 or the errno.</summary>
        private int CloneRange(SafeFileDescriptor fd) =>
            Clone.TryRange(source.Handle, options.SourceOffset ?? 0, Length, fd, options.DestinationOffset ?? options.SourceOffset ?? 0);

        private FileOperationException CloneFailure(int errno) => errno switch
        {
            Errno.EXDEV => new FileOperationException(FileErrorKind.CrossFileSystem, errno, "FICLONE", destination, $"Cannot clone '{source.Path}' to '{destination}': the kernel refused a clone across mounts or filesystems (EXDEV). Use -Fallback Copy, or Copy-Item. Nothing was created."),
            Errno.EOPNOTSUPP or Errno.ENOTTY => new FileOperationException(FileErrorKind.ReflinkNotSupported, errno, "FICLONE", destination, $"Cannot clone '{source.Path}': this filesystem cannot share extents ({Errno.Name(errno)}; for xfs, it was made without reflink=1). Use -Fallback Copy to copy the data instead. Nothing was created."),
            Errno.EINVAL when source.FileSystem.Kind == FileSystemKind.Btrfs => new FileOperationException(FileErrorKind.ChecksumClassMismatch, errno, "FICLONE", destination, $"Cannot clone '{source.Path}' to '{destination}': btrfs refused it (EINVAL), which happens when one file is NOCOW and the other not, or a range is not aligned. Nothing was changed."),
            Errno.ETXTBSY => new FileOperationException(FileErrorKind.ActiveSwapfile, errno, "FICLONE", destination, $"Cannot clone '{source.Path}': a swapfile is active on one of the files (ETXTBSY). Nothing was changed."),
            _ => FileOperationException.FromErrno(errno, "FICLONE", destination, "Cannot clone into", "Nothing was created or changed."),
        };
    }
}

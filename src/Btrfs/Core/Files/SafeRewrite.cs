namespace Btrfs.Core
{
    using System;
    using System.Collections.Generic;
    using System.IO;
    using System.Linq;
    using System.Threading;
    using System.Threading.Tasks;
    using Btrfs.Interop;
    using Btrfs.Kernel;

    /// <summary>What a rewrite changes on the new inode, and how it reports.</summary>
    internal sealed class RewriteOptions
    {
        /// <summary>Inode flags set on the new file while it is still empty (NOCOW only takes on an empty file).</summary>
        public InodeFlags SetFlags { get; init; }

        /// <summary>Inode flags cleared on the new file while it is still empty.</summary>
        public InodeFlags ClearFlags { get; init; }

        /// <summary>Extended attributes of the original that the new file does not get (btrfs.compression on a NOCOW copy).</summary>
        public IReadOnlyCollection<string> SkipXattrs { get; init; } = Array.Empty<string>();

        /// <summary>Called with the bytes copied so far, after every chunk. May throw to abort.</summary>
        public Action<long>? Progress { get; init; }

        /// <summary>Checked between chunks and steps; cancellation aborts with the original untouched.</summary>
        public CancellationToken Cancel { get; init; }

        /// <summary>Skip O_TMPFILE and use a hidden named temporary file (the path for filesystems without O_TMPFILE; tests use it).</summary>
        public bool ForceNamedTemporary { get; init; }

        /// <summary>Where no write lease can prove that nobody else has the file open, go on on the /proc scan alone.</summary>
        public bool AssumeNotInUse { get; init; }

        /// <summary>Told about things done besides the rewrite (a stale temporary file of a killed run removed).</summary>
        public Action<string>? Notice { get; init; }

        /// <summary>Tests only: called with the lease held, just before the names are exchanged.</summary>
        internal Action? BeforeSwap { get; init; }

        /// <summary>Tests only: called during the exchange (see <see cref="TemporaryFile.Replace"/>).</summary>
        internal ExchangeHooks? Exchange { get; init; }
    }

    /// <summary>
    /// One run of a cmdlet that rewrites files: the directories whose stale temporary files have been
    /// cleaned up already (a directory of many files is listed once), the run's stamp (every hidden name
    /// it gives ends with it, so a walk can tell its own from others'), and the <see cref="GraceSettler"/>
    /// that waits out each replacement's grace while the next file is copied. Disposing it waits until
    /// every replacement handed over has settled.
    /// </summary>
    internal sealed class RewriteSession : IDisposable
    {
        private readonly HashSet<string> cleaned = new(StringComparer.Ordinal);
        private GraceSettler? settler;
        private string? stamp;

        /// <summary>The run's stamp ("pid-8 hex"), drawn the first time it is needed.</summary>
        internal string Stamp => stamp ??= TemporaryFile.NewStamp();

        /// <summary>The run's settler, started the first time it is needed.</summary>
        internal GraceSettler Settler => settler ??= new GraceSettler();

        internal bool FirstVisit(string directory) => cleaned.Add(directory);

        /// <summary>
        /// Once per directory of the run: removes what killed runs of this module left there
        /// (<see cref="TemporaryFile.RemoveStale(SafeFileDescriptor, uint, string?)"/>), each told to <paramref name="notice"/>;
        /// <paramref name="own"/> is a hidden name of this run's. Returns what was removed.
        /// </summary>
        internal List<StaleFile> CleanOnce(SafeFileDescriptor dir, string dirPath, Action<string>? notice, string? own = null)
        {
            if (!FirstVisit(dirPath))
            {
                return new List<StaleFile>();
            }

            List<StaleFile> removed = TemporaryFile.RemoveStale(dir, Metadata.FileSystemUserId, own);
            foreach (StaleFile stale in removed)
            {
                notice?.Invoke(stale.Describe(dirPath));
            }

            return removed;
        }

        /// <summary>Whether a walk's entry is what a killed run of this module left, or was until just now (<see cref="TemporaryFile.IsLeftover"/>).</summary>
        internal static bool IsLeftover(FileLocation entry) => TemporaryFile.IsLeftover(entry.Directory, entry.Name);

        /// <summary>True when <paramref name="name"/> is a hidden temporary name this run gave (or may still give).</summary>
        internal bool IsOwnTemporaryName(string name) =>
            stamp is not null && name.StartsWith('.') && name.EndsWith(TemporaryFile.Marker + stamp, StringComparison.Ordinal);

        /// <inheritdoc/>
        public void Dispose() => settler?.Dispose();
    }

    /// <summary>
    /// Replaces a file's data with a fresh copy in a new inode, safely: a temporary file on the same
    /// filesystem in the same directory (O_TMPFILE, so a crash leaves nothing; otherwise a hidden
    /// name that every exit path removes and that the next run in the directory cleans up), its
    /// attributes set while it is empty, a hole-preserving read/write copy, fsync, the original's
    /// mode, owner, group, times, extended attributes (ACLs included) and usage flags, a byte-for-byte
    /// comparison, then, with a write lease on the original proving that no other process has it open
    /// (see <see cref="TemporaryFile.Replace"/>) and a check that it did not change meanwhile, an
    /// atomic exchange of names and an fsync of the directory. Any failure or cancellation before the
    /// exchange, and anyone opening the original during it, leaves the original exactly as it was and
    /// no temporary file.
    /// </summary>
    internal static class SafeRewrite
    {
        /// <summary>Runs the rewrite of <paramref name="source"/> (opened with <see cref="OpenOptions.NoFollow"/>), its grace waited out here.</summary>
        internal static void Run(OpenFile source, RewriteSession session, RewriteOptions options)
        {
            using (PendingReplacement pending = Start(source, session, options))
            {
                pending.Finish();
            }

            SyncDirectory(source);
        }

        /// <summary>
        /// Runs the rewrite of <paramref name="source"/> up to the exchange of names and returns the
        /// replacement in its grace (<see cref="PendingReplacement"/>: <see cref="PendingReplacement.Finish"/>
        /// or a <see cref="GraceSettler"/> waits it out), then <see cref="SyncDirectory"/>. The source must
        /// stay open until the replacement has settled.
        /// </summary>
        internal static PendingReplacement Start(OpenFile source, RewriteSession session, RewriteOptions options)
        {
            string full = System.IO.Path.GetFullPath(source.Path);
            string dirPath = System.IO.Path.GetDirectoryName(full) ?? "/";

            // Everything goes through the directory the file was opened in, never through the path again.
            SafeFileDescriptor dir = source.Directory ?? throw new InvalidOperationException("SafeRewrite needs a file opened relative to its directory (OpenOptions.NoFollow).");
            string name = source.Name;
            FileStatus before = source.Status;
            ThrowIfDirectoryNamedOnly(source, "rewrite {0}");
            FileGuards.ThrowIfDirectoryKeepsItsNames(source, "rewrite {0}");

            TemporaryFile temp = TemporaryFile.Create(dir, dirPath, name, options.ForceNamedTemporary, stamp: session.Stamp);
            try
            {
                // A killed run may have left its named temporary file, or (killed in the grace after an exchange, on any
                // filesystem) the file it replaced under the hidden name. Taking such a run's mark off this very file (under any of its names)
                // moves its change time: that is no writer's, so what it is now is what the copy must still match.
                if (session.CleanOnce(dir, dirPath, options.Notice, temp.CurrentName).Exists(s => s.Touched(before))
                    && FileStatus.Of(source.Handle) is FileStatus now
                    && now.SameInode(before) && now.Size == before.Size && now.ModifyTime == before.ModifyTime)
                {
                    before = now;
                }

                Copy(source, session, options, temp, dirPath, before);

                // 4. Into place, atomically, with a write lease proving that nobody else has the original
                //    open, checked before and after the names are exchanged; the original did not change.
                options.Cancel.ThrowIfCancellationRequested();
                return temp.BeginReplace(source, name, source.Path, "rewrite {0}", options.AssumeNotInUse, () =>
                {
                    ThrowIfChanged(source, before, dir, name);
                    options.Cancel.ThrowIfCancellationRequested();
                    options.BeforeSwap?.Invoke();
                }, options.Exchange, ownsThis: true);
            }
            catch
            {
                temp.Dispose();
                throw;
            }
        }

        /// <summary>
        /// Puts <paramref name="twin"/> (open: the file another hard link of the original was converted into by this run)
        /// in place of <paramref name="source"/> (opened with <see cref="OpenOptions.NoFollow"/>) as one more hard link of
        /// it, with the proof <see cref="Start"/> gives a copy: the two hold the same (<see cref="ThrowUnlessSameAsTwin"/>,
        /// against <paramref name="link"/>: what this run recorded of both), nothing changed either while they were
        /// compared, a write lease on both and the name still leading to the original, then the names exchanged atomically
        /// and the grace waited out (<see cref="PendingReplacement"/>). Nothing is copied: the name leads to the twin's
        /// inode, so the names stay links of one file.
        /// </summary>
        internal static PendingReplacement StartRelink(OpenFile source, OpenFile twin, ConvertedLink link, RewriteSession session, RewriteOptions options)
        {
            const string What = "make {0} a link of its converted other name";
            string dirPath = System.IO.Path.GetDirectoryName(System.IO.Path.GetFullPath(source.Path)) ?? "/";
            SafeFileDescriptor dir = source.Directory ?? throw new InvalidOperationException("SafeRewrite needs a file opened relative to its directory (OpenOptions.NoFollow).");
            string name = source.Name;
            ThrowIfDirectoryNamedOnly(source, What);
            FileGuards.ThrowIfDirectoryKeepsItsNames(source, What);
            _ = session.CleanOnce(dir, dirPath, options.Notice);

            // The converted file is in use already (a VM started on it): said as such, before anything is done (the lease
            // on it taken in the replacement below is the proof; this gives the refusal its right words). Where no lease
            // can be had, the /proc scan decides, as for the original.
            using (WriteLease? free = WriteLease.TryTake(twin.Handle, out LeaseOutcome outcome, out int leaseErrno))
            {
                if (free is null && outcome == LeaseOutcome.InUse)
                {
                    throw new FileOperationException(
                        FileErrorKind.InUse,
                        Errno.EAGAIN,
                        "fcntl(F_SETLEASE)",
                        source.Path,
                        $"Cannot make '{source.Path}' a link of '{twin.Path}', which this run converted from another name of the same file: a process has '{twin.Path}' open now, and what it writes there could differ from what this name holds. '{source.Path}' was left as it is; run again when nothing uses '{twin.Path}', or convert '{source.Path}' on its own to give it a copy of its own.");
                }

                if (free is null)
                {
                    FileGuards.ThrowUnleased(twin, "make '" + source.Path.Replace("{", "{{", StringComparison.Ordinal).Replace("}", "}}", StringComparison.Ordinal) + "' a link of {0}", outcome, leaseErrno, options.AssumeNotInUse);
                }
            }

            // Compared before any lease is taken (a large file takes a while, and a lease held meanwhile would make anyone
            // who opens either file wait); under the leases only their status is checked again, against what it was before
            // the comparison began: nothing wrote to either or changed its attributes meanwhile (a review: the status was
            // read after the comparison, and a write that landed during it, in bytes already compared, was lost with the
            // old file), and the name still leads to the original. Comparing must not change them: a refusal leaves both
            // access times.
            _ = Files.TryKeepAccessTime(source.Handle);
            _ = Files.TryKeepAccessTime(twin.Handle);
            FileStatus before = source.Restat(), twinBefore = twin.Restat();
            ThrowUnlessSameAsTwin(source, twin, link, options.SkipXattrs, options.Cancel);

            TemporaryFile linked = TemporaryFile.LinkTo(dir, Files.Duplicate(twin.Handle, twin.Path), session.Stamp);
            try
            {
                options.Cancel.ThrowIfCancellationRequested();
                return linked.BeginReplace(source, name, source.Path, What, options.AssumeNotInUse, () =>
                {
                    ThrowIfChanged(source, before, dir, name);
                    if (!twin.Restat().SameContentStamp(twinBefore))
                    {
                        throw TwinDiffers(source, twin, $"'{twin.Path}' was changed while the two were compared");
                    }

                    options.Cancel.ThrowIfCancellationRequested();
                    options.BeforeSwap?.Invoke();
                }, options.Exchange, ownsThis: true);
            }
            catch
            {
                linked.Dispose();
                throw;
            }
        }

        /// <summary>
        /// Refuses a file whose directory this user may search but not read (it was only named, O_PATH): the rewrite
        /// needs the directory open, for its temporary file and for the fsync that makes the new name last through
        /// a crash. Asked before anything is shown or done (also by -WhatIf).
        /// </summary>
        internal static void ThrowIfDirectoryNamedOnly(OpenFile source, string what)
        {
            if (source.Directory is SafeFileDescriptor dir && DirectoryHandle.IsNamedOnly(dir))
            {
                string dirPath = System.IO.Path.GetDirectoryName(System.IO.Path.GetFullPath(source.Path)) ?? "/";
                throw new FileOperationException(
                    FileErrorKind.AccessDenied,
                    Errno.EACCES,
                    "open",
                    source.Path,
                    $"Cannot {FileGuards.Phrase(what, source.Path)}: this user may search its directory '{dirPath}' but not read it, and the rewrite needs the directory open (its temporary file, and the fsync that makes the new name last through a crash). Run as a user who can read the directory (or as root). Nothing was changed.");
            }
        }

        /// <summary>After a replacement went through: the directory's fsync, so the new name survives a crash.</summary>
        internal static void SyncDirectory(OpenFile source) =>
            Files.Sync(source.Directory!, System.IO.Path.GetDirectoryName(System.IO.Path.GetFullPath(source.Path)) ?? "/", "The new file is in place, but the directory could not be synced:");

        private static void Copy(OpenFile source, RewriteSession session, RewriteOptions options, TemporaryFile temp, string dirPath, FileStatus before)
        {
            string tempLabel = $"the new copy of '{source.Path}'";

            // Reading the original must not change it: a refused conversion leaves its access time too.
            _ = Files.TryKeepAccessTime(source.Handle);

            // 1. Attributes that only take on an empty file.
            InodeFlags tempFlags = InodeAttributes.Get(temp.Handle, tempLabel);
            InodeFlags wanted = (tempFlags | options.SetFlags) & ~options.ClearFlags;
            if (wanted != tempFlags)
            {
                tempFlags = InodeAttributes.Set(temp.Handle, tempLabel, wanted);
            }

            if ((tempFlags & options.SetFlags) != options.SetFlags || (tempFlags & options.ClearFlags) != 0)
            {
                throw new FileOperationException(
                    FileErrorKind.NoCowNotApplied,
                    0,
                    "FS_IOC_SETFLAGS",
                    source.Path,
                    $"Cannot rewrite '{source.Path}': the new empty file did not take the attributes asked for (it has {tempFlags}). The original is unchanged.");
            }

            // The group first, on the empty copy, where the owner stays this user's: refused before any of the original
            // is read (the owner of another user's file is checked before, by the conversion's plan).
            if (before.Uid == Metadata.FileSystemUserId)
            {
                MetadataCopy.GiveOwner(source, temp.Handle);
            }

            // 2. The data, synced, then proof that it reads back identical (before the times are set:
            //    reading the copy could move its access time).
            options.Cancel.ThrowIfCancellationRequested();
            DataCopy.Copy(source, temp.Handle, source.Path, before.Size, options.Progress, options.Cancel);
            if (!SyncWhileComparing(source, temp.Handle, tempLabel, before.Size, options.Cancel))
            {
                ThrowIfChanged(source, before, source.Directory!, source.Name); // a writer explains a difference better than the disk does
                throw new FileOperationException(
                    FileErrorKind.VerificationFailed,
                    0,
                    "compare",
                    source.Path,
                    $"Cannot rewrite '{source.Path}': the copy did not read back identical to the original, so it was discarded. The original is unchanged. Check the filesystem (dmesg, btrfs device stats).");
            }

            // 3. The metadata, times last (every other change would touch them).
            InodeFlags originalFlags = InodeAttributes.Get(source.Handle, source.Path);
            MetadataCopy.Copy(source, temp.Handle, tempLabel, tempFlags, originalFlags, skipXattrs: options.SkipXattrs);
            Sync(temp.Handle, source.Path, before.Size);
        }

        /// <summary>
        /// fsync of the copy on another thread while its data is compared with the original's: the
        /// disk writes and the comparison (page cache and CPU) overlap. Both must succeed.
        /// </summary>
        private static bool SyncWhileComparing(OpenFile source, SafeFileDescriptor copy, string copyLabel, long size, CancellationToken cancel)
        {
            Task<int> sync = Task.Run(() => Files.TrySync(copy));
            bool same;
            try
            {
                same = DataCopy.SameData(source, copy, copyLabel, size, cancel);
            }
            finally
            {
                int errno = sync.GetAwaiter().GetResult(); // the descriptor must outlive the fsync
                if (errno != 0)
                {
                    throw DataCopy.Failure(errno, "fsync", source.Path, size, size);
                }
            }

            return same;
        }

        private static void Sync(SafeFileDescriptor fd, string path, long size)
        {
            if (Files.TrySync(fd) is int errno and not 0)
            {
                throw DataCopy.Failure(errno, "fsync", path, size, size);
            }
        }

        /// <summary>
        /// The original (the name's file) and the twin hold the same: the name still leads to the old file the twin was
        /// converted from, the twin is that converted file, their sizes and modification times are alike (the twin was
        /// given the original's: a write to either since moved one), their owner, group, mode, extended attributes (ACLs
        /// included; the module's own marks and, to NOCOW, the compression property aside) and carried file attributes
        /// (chattr) are alike (compared, not inferred from a change time: one set on the old file in the grace of the first
        /// conversion was lost; a review), and the data is identical byte for byte.
        /// </summary>
        private static void ThrowUnlessSameAsTwin(OpenFile source, OpenFile twin, ConvertedLink link, IReadOnlyCollection<string> skipXattrs, CancellationToken cancel)
        {
            FileStatus now = source.Restat(), other = twin.Restat();
            string? differs = !now.SameInode(link.Original) ? "that name leads to another file now"
                : link.Copy is not FileStatus copy || !other.SameInode(copy) ? $"'{twin.Path}' leads to another file now"
                : other.Size != copy.Size || other.ModifyTime != copy.ModifyTime ? $"'{twin.Path}' was written to since"
                : now.Size != other.Size || now.ModifyTime != other.ModifyTime ? "it was written to since"
                : other.Uid != now.Uid || other.Gid != now.Gid || other.Permissions != now.Permissions ? "their owner, group or mode differ now"
                : XattrsDiffer(source, twin, skipXattrs) is string name ? $"their extended attributes differ now ('{name}')"
                : (InodeAttributes.Get(source.Handle, source.Path) & InodeAttributes.Carried) != (InodeAttributes.Get(twin.Handle, twin.Path) & InodeAttributes.Carried) ? "their file attributes (chattr) differ now"
                : !DataCopy.SameData(source, twin.Handle, twin.Path, now.Size, cancel) ? $"'{twin.Path}' does not hold the same data"
                : null;
            if (differs is not null)
            {
                throw TwinDiffers(source, twin, differs);
            }
        }

        /// <summary>The name of an extended attribute the two files do not have alike (absent from one, or another value), or null.</summary>
        private static string? XattrsDiffer(OpenFile a, OpenFile b, IReadOnlyCollection<string> skip)
        {
            static bool Compared(string name, IReadOnlyCollection<string> skip) => !name.StartsWith(TemporaryFile.AttributePrefix, StringComparison.Ordinal) && !skip.Contains(name);
            var first = Xattrs.List(a.Handle, a.Path).Where(n => Compared(n, skip)).ToHashSet(StringComparer.Ordinal);
            var second = Xattrs.List(b.Handle, b.Path).Where(n => Compared(n, skip)).ToHashSet(StringComparer.Ordinal);
            if (first.Except(second).Concat(second.Except(first)).FirstOrDefault() is string missing)
            {
                return missing;
            }

            foreach (string name in first)
            {
                if (Xattrs.Get(a.Handle, name, a.Path) is byte[] x && Xattrs.Get(b.Handle, name, b.Path) is byte[] y ? !x.AsSpan().SequenceEqual(y) : true)
                {
                    return name;
                }
            }

            return null;
        }

        private static FileOperationException TwinDiffers(OpenFile source, OpenFile twin, string differs) =>
            new(
                FileErrorKind.ChangedDuringCopy,
                0,
                "compare",
                source.Path,
                $"Cannot make '{source.Path}' a link of '{twin.Path}', which this run converted from another name of the same file: {differs}, so the two may no longer hold the same. Both were left as they are. Convert '{source.Path}' on its own to give it a copy of its own, or make it a link by hand (ln -f) if '{twin.Path}' holds what it should.");

        private static void ThrowIfChanged(OpenFile source, in FileStatus before, SafeFileDescriptor dir, string name)
        {
            FileStatus now = source.Restat();
            bool samePath = FileStatus.OfAt(dir, name) is FileStatus st && st.SameInode(before);
            if (now.SameContentStamp(before) && samePath)
            {
                return;
            }

            string what = !samePath ? "its name now points to another file"
                : now.Size != before.Size ? $"its size went from {before.Size} to {now.Size} bytes"
                : "it was written to (its modification or change time moved)";
            throw new FileOperationException(
                FileErrorKind.ChangedDuringCopy,
                0,
                "statx",
                source.Path,
                $"Cannot rewrite '{source.Path}': the file changed while it was being copied ({what}). The original was left as it is now and the copy was removed. Try again when nothing writes to it.");
        }
    }
}

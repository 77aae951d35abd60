namespace Btrfs.Core
{
    using System;
    using System.Collections.Generic;
    using System.Globalization;
    using System.IO;
    using System.Text;
    using System.Text.RegularExpressions;
    using System.Threading;
    using Btrfs.Interop;
    using Btrfs.Kernel;

    /// <summary>
    /// A new file in an open directory that has no name until it is complete: O_TMPFILE (a crash leaves
    /// nothing), or on filesystems without it a hidden name, ".&lt;name&gt;.~btrfs-&lt;pid&gt;-&lt;8 hex&gt;".
    /// Every such file carries a marker (the extended attribute <see cref="MarkerAttribute"/> whose
    /// value repeats the name's pid and random part), so that <see cref="RemoveStale"/> removes only
    /// files this module provably made: never a file that merely has a name like that.
    /// </summary>
    internal sealed partial class TemporaryFile : IDisposable
    {
        /// <summary>What every hidden temporary name contains.</summary>
        internal const string Marker = ".~btrfs-";

        /// <summary>The extended attribute that proves a hidden file is this module's own temporary file.</summary>
        internal const string MarkerAttribute = AttributePrefix + "temporary";

        /// <summary>How every extended attribute the module sets on a file begins: never copied into a new file, never compared.</summary>
        internal const string AttributePrefix = "user.btrfs-module.";

        /// <summary>
        /// The extended attribute a file being replaced carries from just before the exchange until it is gone (or
        /// back under its name): the stamp, and its size and modification time then ("1234-0badc0de 4096 1700000000.5").
        /// A run killed in the grace after the exchange leaves it under the hidden name; the next run removes it only
        /// if it still has that size and time and nobody has it open (<see cref="RemoveStale"/>).
        /// </summary>
        internal const string ReplacedAttribute = AttributePrefix + "replaced";

        /// <summary>
        /// The extended attribute the new copy carries, from just after the exchange until the replacement settles: the
        /// stamp, and the change time the replaced file (under the hidden name) had then ("1234-0badc0de 1700000000.5").
        /// Nobody can set a change time: a leftover whose change time is still that one was changed by nobody since (its
        /// size and modification time alone can be put back: touch -m; a hostile test), so only then is it removed.
        /// </summary>
        internal const string ReplacedChangeAttribute = AttributePrefix + "replaced-changed";

        private readonly SafeFileDescriptor dir;
        private FileStatus? replaced;
        private SafeFileDescriptor? originalHandle;
        private string? stamp;
        private string? linkedName;
        private bool committed;
        private bool marked;
        private bool changeRecorded;
        private bool existing;

        private TemporaryFile(SafeFileDescriptor dir, SafeFileDescriptor handle, string? linkedName, string? stamp)
        {
            this.dir = dir;
            Handle = handle;
            this.linkedName = linkedName;
            this.stamp = stamp;
        }

        internal SafeFileDescriptor Handle { get; }

        /// <summary>Whether <paramref name="name"/> in this file's directory holds this file now (never one renamed onto it).</summary>
        private bool Holds(string name) =>
            FileStatus.Of(Handle) is FileStatus mine && FileStatus.OfAt(dir, name) is FileStatus there && there.SameInode(mine);

        /// <summary>
        /// This run's stamp (the marker's value and the hidden name's end), drawn when the file first needs a
        /// name or a marker: an unnamed copy that never gets one does not load the system's random source
        /// (OpenSSL, 15-20 ms the first time in a process).
        /// </summary>
        private string Stamp => stamp ??= NewStamp();

        /// <summary>The hidden name the file has in its directory (null while it has none).</summary>
        internal string? CurrentName => linkedName;

        /// <summary>The file was created with a hidden name (the filesystem has no O_TMPFILE, or one was asked for).</summary>
        internal bool WasNamedFromStart { get; private set; }

        /// <summary>
        /// Creates the file in the open directory <paramref name="dir"/>; <paramref name="name"/> is the
        /// name it will get. <paramref name="mode"/> (the umask applies) defaults to 0600. <paramref name="stamp"/>
        /// is the run's own (<see cref="RewriteSession.Stamp"/>: its hidden names are known to be its own), or
        /// null for one of the file's own.
        /// </summary>
        internal static TemporaryFile Create(SafeFileDescriptor dir, string dirPath, string name, bool forceNamed, int mode = 0x180, string? stamp = null)
        {
            if (!forceNamed)
            {
                if (Names.TryCreateUnnamed(dir, mode, out int errno) is SafeFileDescriptor fd)
                {
                    return new TemporaryFile(dir, fd, null, stamp);
                }

                if (errno is not (Errno.EOPNOTSUPP or Errno.EISDIR or Errno.EINVAL))
                {
                    throw CreateFailure(errno, dirPath, name);
                }
            }

            stamp ??= NewStamp();
            string hidden = HiddenName(name, Marker, stamp);
            SafeFileDescriptor? named = Names.TryCreateExclusive(dir, hidden, mode, out int createErrno);
            for (int attempt = 1; named is null && createErrno == Errno.EEXIST && attempt < 10; attempt++)
            {
                // Taken already (two names of this run alike in their first 200 bytes): the same stamp, a number before it.
                hidden = HiddenName(name, Marker, stamp, attempt);
                named = Names.TryCreateExclusive(dir, hidden, mode, out createErrno);
            }

            if (named is null)
            {
                throw CreateFailure(createErrno, dirPath, name);
            }

            var temp = new TemporaryFile(dir, named, hidden, stamp) { WasNamedFromStart = true };
            temp.Mark();
            return temp;
        }

        /// <summary>
        /// A file that exists already, to be given a name in <paramref name="dir"/> in place of another (<see cref="BeginReplace"/>):
        /// <paramref name="existing"/> (a descriptor of its own, which this takes over) is a file of the same filesystem with a
        /// name elsewhere, such as the converted file another hard link of the original now leads to. Only the hidden name
        /// this gives it is ever removed, never the file.
        /// </summary>
        internal static TemporaryFile LinkTo(SafeFileDescriptor dir, SafeFileDescriptor existing, string? stamp) => new(dir, existing, null, stamp) { existing = true };

        /// <summary>What became of this file when a replacement was refused: a new copy is removed; an existing file keeps its names.</summary>
        internal string Fate => existing ? "nothing else was changed" : "the copy was removed";

        /// <summary>
        /// Gives the file the name <paramref name="name"/>, which must not exist (EEXIST otherwise:
        /// nothing is overwritten). A new name replaces no one's file, so no lease is needed.
        /// </summary>
        internal void LinkAsNew(string name, string path)
        {
            int errno = Names.TryLink(Handle, dir, name); // fails with EEXIST if the name exists: nothing is overwritten
            if (errno != 0)
            {
                throw LinkFailure(errno, path);
            }

            committed = true;
            if (linkedName is not null)
            {
                // It had a hidden name as well: drop that one, while it holds this file (never one renamed onto it). Before
                // the marks come off: killed in between, the hidden name (an extra name of the file) still carries the
                // run's marker, so the next run removes it (before: unmarked first, it stayed for good; a review).
                if (Holds(linkedName) && !Names.TryRemove(dir, linkedName))
                {
                    // Not removed (the directory made append-only meanwhile): the marks stay, so a later run removes that
                    // extra name (a review: unmarked, it stayed for good and walks handed it out as a file).
                    linkedName = null;
                    return;
                }

                linkedName = null;
            }

            Unmark();
        }

        /// <summary>
        /// Puts this file in place of <paramref name="original"/> (open, and named <paramref name="name"/>
        /// in this file's directory), atomically, proving first that nobody else has the original open, and
        /// waits out the grace after the exchange (see <see cref="BeginReplace"/>). Every refusal leaves the
        /// original exactly as it was, under its name.
        /// </summary>
        internal void Replace(OpenFile original, string name, string path, string what, bool assumeNotInUse, Action verifyUnchanged, ExchangeHooks? hooks = null)
        {
            using PendingReplacement pending = BeginReplace(original, name, path, what, assumeNotInUse, verifyUnchanged, hooks, ownsThis: false);
            pending.Finish();
        }

        /// <summary>
        /// Puts this file in place of <paramref name="original"/> (open, and named <paramref name="name"/>
        /// in this file's directory), atomically, proving first that nobody else has the original open:
        /// <list type="number">
        /// <item>a write lease on the original (<see cref="WriteLease"/>), which the kernel grants only
        /// when no other open file description or mapping of it exists, and which blocks anyone who
        /// opens it from then on; where none can be taken (not the owner, leases disabled) the /proc
        /// scan decides, and only <paramref name="assumeNotInUse"/> lets it go on;</item>
        /// <item>a write lease on this file too, and <paramref name="verifyUnchanged"/> (the original was
        /// not written meanwhile and its name still leads to it);</item>
        /// <item>the lease on the original read again (anyone who opened it meanwhile is refused before
        /// the exchange), an exchange of the two names (renameat2 RENAME_EXCHANGE); the returned
        /// <see cref="PendingReplacement"/> then holds both leases through the grace in which an open that
        /// found the name just before the exchange may still reach the old file, and undoes the exchange
        /// if one does.</item>
        /// </list>
        /// The original must stay open until the replacement has settled (its lease is on that descriptor).
        /// With <paramref name="ownsThis"/> the pending replacement disposes this file when it settles.
        /// Every refusal leaves the original exactly as it was, under its name.
        /// </summary>
        internal PendingReplacement BeginReplace(OpenFile original, string name, string path, string what, bool assumeNotInUse, Action verifyUnchanged, ExchangeHooks? hooks, bool ownsThis)
        {
            PendingReplacement.HookTheProcessEnd();
            replaced = original.Status;
            WriteLease? oldLease = WriteLease.TryTake(original.Handle, out LeaseOutcome outcome, out int errno);
            WriteLease? newLease = null;
            try
            {
                if (oldLease is null)
                {
                    FileGuards.ThrowUnleased(original, what, outcome, errno, assumeNotInUse);
                }

                newLease = oldLease is null ? null : WriteLease.TryTake(Handle, out LeaseOutcome newOutcome, out _);
                if (oldLease is not null && newLease is null)
                {
                    throw new FileOperationException(
                        FileErrorKind.InUse,
                        Errno.EAGAIN,
                        "fcntl(F_SETLEASE)",
                        path,
                        $"Cannot {FileGuards.Phrase(what, path)}: another process opened the new copy{(linkedName is null ? string.Empty : $" under its temporary name '{linkedName}'")}. The original was left as it is; {Fate}.");
                }

                // What the original is as it is checked: after the exchange it must still be so (its change time cannot
                // say: the exchange moves it).
                ReplacedState? checkedState = ReplacedState.Of(original.Handle, path);
                verifyUnchanged();
                FileGuards.ThrowIfMounted(original, what, assumeNotInUse); // a bind mount of it made while the copy was written

                // From the last check until the replacement in its grace exists, the process's end waits (it then
                // settles every replacement), and once it has begun no exchange does: this one waits for the
                // process to end, or (a signal something else cancelled) for exchanges to be let begin again.
                lock (PendingReplacement.ExchangeGate)
                {
                    while (PendingReplacement.Ending)
                    {
                        Monitor.Wait(PendingReplacement.ExchangeGate, 100);
                    }

                    // The copy gets its hidden name only here: the process's end finds it named only as part of
                    // a replacement it settles (an unnamed O_TMPFILE copy leaves nothing when the process ends).
                    EnsureLinked(name, path);

                    // Whoever opened the original meanwhile (blocked by the lease, or counted and on the way to it)
                    // is refused here, before the exchange, while nobody can have seen the new file under the name.
                    if (oldLease is not null && !(oldLease.IsIntact && oldLease.Reaffirm()))
                    {
                        throw OpenedMeanwhile(path, what, Fate);
                    }

                    // The original is marked as this run's to remove, so that a run killed in the grace below leaves
                    // nothing the next run cannot prove its own (the hidden name then holds the original).
                    MarkOriginal(original);
                    hooks?.BeforeExchange?.Invoke(linkedName!);
                    if (Names.TryExchange(dir, linkedName!, name) is int exchangeErrno and not 0)
                    {
                        UnmarkOriginal(); // no hidden name holds it: a rename over it, or nothing at all
                        if (exchangeErrno is not (Errno.EINVAL or Errno.ENOSYS or Errno.EOPNOTSUPP))
                        {
                            throw FileOperationException.FromErrno(exchangeErrno, "renameat2", path, "Cannot put the new file in place of", "The original is unchanged.");
                        }

                        // A filesystem without RENAME_EXCHANGE: a plain rename over the original, with the
                        // lease (if any) held through it; an opener blocked by the lease is only told after.
                        if (oldLease is not null && !oldLease.IsIntact)
                        {
                            throw OpenedMeanwhile(path, what, Fate);
                        }

                        Names.Rename(dir, linkedName!, name, path, "Cannot put the new file in place of", "The original is unchanged.");

                        committed = true;
                        linkedName = null;
                        Unmark();
                        return PendingReplacement.Done(this, ownsThis, path, what);
                    }

                    // The hidden name now holds whatever the name held: it must be the original.
                    // Undone at once, for the reason given: the new copy then has the grace an undo gives it.
                    PendingReplacement UndoneBecause(string why)
                    {
                        UndoExchange(name, path);
                        oldLease?.Dispose();
                        oldLease = null;
                        PendingReplacement undone = PendingReplacement.Undone(this, ownsThis, newLease, name, path, what, new FileOperationException(FileErrorKind.ChangedDuringCopy, 0, "renameat2", path, $"Cannot {FileGuards.Phrase(what, path)}: {why}"));
                        newLease = null;
                        return undone;
                    }

                    if (FileStatus.OfAt(dir, linkedName!) is not FileStatus swapped || !swapped.SameInode(original.Status))
                    {
                        return UndoneBecause($"its name was given to another file at the last moment. That file was left under its name, and {Fate}.");
                    }

                    // And the name now holds whatever the hidden name held: it must be this file. (Before: a process that
                    // may write to the directory renamed another file onto the hidden name before the exchange, which then
                    // put that file under the name, the run said it was done, and removed the original from the hidden
                    // name; a hostile test.)
                    if (!Holds(name))
                    {
                        throw HiddenNameTaken(original, name, path, what);
                    }

                    // Nothing changed the original between its last check and the exchange: a change of mode, owner, links,
                    // times, extended attributes or file attributes needs no open, so the lease does not stop it, and it
                    // would be lost with the old file (before: a chmod 600 made at that moment was undone, and a hard link
                    // made then was split off without a word; a hostile test).
                    if (checkedState is not null && ReplacedState.Of(original.Handle, path) is ReplacedState now && now.Differs(checkedState.Value) is string how)
                    {
                        return UndoneBecause($"{how} changed at the last moment, after it was last checked, and that change would have been lost with it. It was left under its name as it is now, and {Fate}. Run the command again.");
                    }

                    // Its change time now, on the new copy: a run killed from here on leaves the original under the hidden
                    // name, and the next run removes it only if nobody changed it since (RemoveStale).
                    if (marked && originalHandle is not null && FileStatus.Of(original.Handle) is FileStatus exchanged)
                    {
                        changeRecorded = Xattrs.TrySet(Handle, ReplacedChangeAttribute, Encoding.ASCII.GetBytes(StampAndTime(Stamp, exchanged.ChangeTime)));
                    }

                    hooks?.AfterExchange?.Invoke(linkedName!);

                    if (oldLease is null)
                    {
                        // No lease (the /proc scan decided, -AssumeNotInUse): nothing to wait for.
                        Commit();
                        return PendingReplacement.Done(this, ownsThis, path, what);
                    }

                    // An open that found the original by its name just before the exchange may still be on its way
                    // into the kernel: it is counted as soon as it has the inode, and then waits for the lease. So
                    // the old file keeps its (hidden) name and the lease for a moment, and is asked again and again
                    // whether anyone but us has it open or is waiting for it; only then does it go. This is a bound,
                    // not a proof: an opener held up for longer than the grace between finding the name and being
                    // counted (a process stopped, or throttled by its cgroup, at exactly that point) would still
                    // reach the old inode after its name is gone. Nothing the kernel offers closes that window.
                    // At the grace's end, what was proven right after the exchange is proven again: a chmod, an extended
                    // attribute or a hard link whose path was looked up before the exchange can land on the old file in the
                    // grace, and a process may rename the hidden name onto the name (before: both went without a word: the
                    // change lost, or nothing converted and the run said it was done; a hostile test).
                    Exception? StillAsExchanged()
                    {
                        FileStatus? under = FileStatus.OfAt(dir, name);
                        if (under is FileStatus back && back.SameInode(original.Status))
                        {
                            // The hidden old file was renamed back onto the name: nothing is replaced (the new copy went with
                            // the name it had), and nothing is left to remove.
                            committed = true;
                            linkedName = null;
                            UnmarkOriginal();
                            Unmark();
                            return new FileOperationException(
                                FileErrorKind.ChangedDuringCopy,
                                0,
                                "statx",
                                path,
                                $"Cannot {FileGuards.Phrase(what, path)}: while it was being replaced, a process renamed the old file from its hidden name back onto the name. It is there as it was; {(existing ? "nothing else was changed" : "the new copy was discarded")}.");
                        }

                        if (FileStatus.Of(Handle) is not FileStatus copy || under is not FileStatus now0 || !now0.SameInode(copy))
                        {
                            return null; // the name was changed by another process after the replacement (removed, renamed, saved over): the replacement stands
                        }

                        return checkedState is not null && ReplacedState.Of(original.Handle, path) is ReplacedState now && now.Differs(checkedState.Value) is string how
                            ? new FileOperationException(
                                FileErrorKind.ChangedDuringCopy,
                                0,
                                "statx",
                                path,
                                $"Cannot {FileGuards.Phrase(what, path)}: {how} changed while it was being replaced, and that change would have been lost with it. It was left under its name as it is now, and {Fate}. Run the command again.")
                            : null;
                    }

                    var pending = new PendingReplacement(this, ownsThis, oldLease, newLease, name, path, what, hooks, StillAsExchanged);
                    oldLease = null;
                    newLease = null;
                    return pending;
                }
            }
            finally
            {
                newLease?.Dispose();
                oldLease?.Dispose();
            }
        }

        /// <summary>The replacement went through: the old inode leaves under the hidden name.</summary>
        internal void Commit()
        {
            committed = true;

            // Only the file this one replaced goes: never one renamed onto the hidden name meanwhile. The new copy keeps
            // its marks until then: killed between the two, the next run proves the old file by them (before: unmarked
            // first, a kill in that instant left a hidden full copy no run could prove, kept for good; a hostile test).
            // Killed after the removal, the marks stay on the new copy, naming a run that is over: nothing goes by them.
            bool holdsOriginal = linkedName is not null
                && (replaced is not FileStatus original || (FileStatus.OfAt(dir, linkedName) is FileStatus now && now.SameInode(original)));
            if (holdsOriginal && Names.TryRemove(dir, linkedName!))
            {
                holdsOriginal = false;
                linkedName = null;

                // Gone with its marker, unless it has other names still (a hard-linked file): then the mark comes off
                // below, or those names would carry it for good and copies of them too (a hostile review).
                if (originalHandle is not SafeFileDescriptor fd || fd.IsClosed || FileStatus.Of(fd) is not FileStatus left || left.Links == 0)
                {
                    originalHandle = null;
                }
            }

            if (holdsOriginal)
            {
                // Not removed (the directory made append-only or immutable meanwhile, a read-only remount, an I/O error):
                // both keep the run's marks, so a later run proves the old file unchanged and removes it, saying so (before:
                // unmarked, a hidden full copy stayed for good without a word; a review).
                linkedName = null;
                return;
            }

            UnmarkOriginal(); // still somewhere (another name took the hidden one): never removed as stale
            Unmark();
        }

        public void Dispose()
        {
            if (!committed && existing)
            {
                Unmark(); // an existing file keeps no mark of a replacement that did not happen
            }

            // Only this file: never one renamed onto the hidden name meanwhile.
            if (!committed && linkedName is not null && Holds(linkedName))
            {
                _ = Names.TryRemove(dir, linkedName);
            }

            Handle.Dispose();
        }

        /// <summary>
        /// Removes the hidden temporary files that runs of this module left in the directory when they
        /// were killed, and only those: a name of the pattern, a regular file, the same
        /// owner as this (just created) file, the marker attribute matching the name, and no process
        /// with the name's pid. Also the files such a run had replaced and left under the hidden name (killed
        /// in the grace after the exchange): proven by <see cref="ReplacedAttribute"/> and by the same run's
        /// marker on the file under the name, only if unchanged since and open nowhere, owned by this user
        /// (any owner for root). A file that has other names (a run killed while it made another name of a hard-linked file a
        /// link of the file it had converted, or while it replaced a hard-linked file) loses only the hidden name, and the
        /// run's mark is taken off it. Returns the names removed.
        /// </summary>
        internal List<StaleFile> RemoveStale() =>
            FileStatus.Of(Handle) is FileStatus mine ? RemoveStale(dir, mine.Uid, linkedName) : new List<StaleFile>();

        /// <summary>
        /// As <see cref="RemoveStale()"/>, in the open directory <paramref name="dir"/> before any temporary file is made
        /// there: <paramref name="owner"/> is the user whose temporary files are removed (the file system user of this
        /// process), <paramref name="own"/> a hidden name of this run's that stays.
        /// </summary>
        internal static List<StaleFile> RemoveStale(SafeFileDescriptor dir, uint owner, string? own)
        {
            var removed = new List<StaleFile>();
            // Listed through the directory's own descriptor, like everything else here.
            var names = new List<string>();
            foreach (string n in DirectoryListing.Names(dir))
            {
                if (n.StartsWith('.') && n.Contains(Marker, StringComparison.Ordinal))
                {
                    names.Add(n);
                }
            }

            foreach (string file in names)
            {
                Match m = TemporaryName().Match(file);
                if (!m.Success || file == own || IsRunning(m))
                {
                    continue;
                }

                if (FileStatus.OfAt(dir, file) is not { IsRegular: true } named)
                {
                    continue; // never opened: not a regular file
                }

                string stamp = m.Groups["stamp"].Value;
                using SafeFileDescriptor? fd = Names.TryOpenForReading(dir, file);
                if (fd is null
                    || FileStatus.Of(fd) is not FileStatus st
                    || !st.IsRegular
                    || !st.SameInode(named)
                    || st.Links < 1)
                {
                    continue;
                }

                // Before: only a file with one link was removed, so a run killed while it made another name of a hard-linked
                // file a link of the converted file (the hidden name an extra link of that file), or while it replaced a
                // hard-linked file (the hidden name one of the old file's names), left the name and its mark for good.
                // Removing one of several names loses nothing: the file lives on under the others, without the mark.
                // Another user's (the converted file of another user's hard-linked file, which root's killed run was making
                // another name of it a link of) only for root, and only where the name is not the file's last: only a name goes.
                if ((st.Uid == owner || (st.Links > 1 && Metadata.FileSystemUserId == 0)) && Xattrs.TryGetText(fd, MarkerAttribute) == stamp)
                {
                    // The name must still lead to the inode just examined, and nobody may have it open (a process that
                    // opened the leftover would write into a file gone from every directory).
                    using (WriteLease? alone = WriteLease.TryTake(fd, out _, out _))
                    {
                        // Another user's only while it still has other names (a review: they could go meanwhile, and root would
                        // remove the last name of that user's file).
                        if (alone is null || FileStatus.OfAt(dir, file) is not FileStatus again || !again.SameInode(st)
                            || (st.Uid != owner && FileStatus.Of(fd) is not { Links: > 1 })
                            || !Names.TryRemove(dir, file))
                        {
                            continue;
                        }
                    }

                    FileStatus? lives = Unmark(fd, MarkerAttribute);

                    // Killed just before its exchange: the file it was to replace kept its name and the run's mark.
                    string? kept = FindMarked(dir, file, stamp, ReplacedAttribute, stamp + " ", k => k.Size == st.Size); // the copy was whole by then
                    FileStatus? keptNow = kept is null ? null : DropMark(dir, kept, ReplacedAttribute, stamp + " ");
                    removed.Add(new StaleFile(file, false) { Unmarked = keptNow, LivesOn = lives });
                    continue;
                }

                // A file a killed run had replaced, under the hidden name the exchange gave it: removed only if its size
                // and modification time are still those it had just before the exchange, and its change time the one it
                // had just after it (nobody wrote to it or changed it since: an opener the run's lease held back would,
                // once the run died, write here), and nobody has it open now.
                // The pair is proven too: the file under the name it was made from carries the same run's marker for
                // the new copy (a hidden file with a marker and nothing beside it is no leftover of a replacement).
                // Its owner is the replaced file's: this user's, or anyone's for root (who replaces other users' files).
                if ((st.Uid != owner && Metadata.FileSystemUserId != 0)
                    || Xattrs.TryGetText(fd, ReplacedAttribute) is not string mark
                    || mark != string.Create(CultureInfo.InvariantCulture, $"{stamp} {st.Size} {st.ModifyTime.Seconds}.{st.ModifyTime.Nanoseconds:D9}")
                    || FindMarked(dir, file, stamp, MarkerAttribute, stamp, n => n.Size == st.Size && n.ModifyTime == st.ModifyTime) is not string live // the copy has its size and times
                    || !HasMark(dir, live, ReplacedChangeAttribute, StampAndTime(stamp, st.ChangeTime))) // and changed by nobody since the exchange
                {
                    // Marked as a replaced file by that run, but not proven to be one now (written since, or the file
                    // that took its name was replaced in turn, as editors save): kept, and said, every time, so that a
                    // hidden full-size copy does not stay unseen (a hostile review: five of them, kept without a word).
                    if ((st.Uid == owner || Metadata.FileSystemUserId == 0) && Xattrs.TryGetText(fd, ReplacedAttribute) is string kept && kept.StartsWith(stamp + " ", StringComparison.Ordinal))
                    {
                        removed.Add(new StaleFile(file, true) { Left = true });
                    }

                    continue;
                }

                using (WriteLease? alone = WriteLease.TryTake(fd, out _, out _))
                {
                    if (alone is null
                        || FileStatus.OfAt(dir, file) is not FileStatus again
                        || !again.SameContentStamp(st)
                        || !Names.TryRemove(dir, file))
                    {
                        continue;
                    }
                }

                FileStatus? livesOn = Unmark(fd, ReplacedAttribute);

                // The file that took its name still carries the run's marker for its new copy: dropped.
                _ = DropMark(dir, live, ReplacedChangeAttribute, stamp + " ");
                removed.Add(new StaleFile(file, true) { Unmarked = DropMark(dir, live, MarkerAttribute, stamp), LivesOn = livesOn });
            }

            return removed;
        }

        /// <summary>
        /// The process whose running rewrite the name <paramref name="name"/> in <paramref name="dir"/> belongs to (its pid
        /// in a name of this module's hidden pattern, that process still there, and that run's marker on the file, read
        /// without opening it; or the name gone already): another conversion in the same directory, whose temporary name
        /// comes and goes within moments. Null for any other name: a file merely named like one, by a process that is
        /// running (pid 1), is not passed over. (Before: the name and a live pid were enough; a hostile review.)
        /// </summary>
        internal static int? RunningRewriteOf(SafeFileDescriptor dir, string name)
        {
            Match m = TemporaryName().Match(name);
            if (!m.Success || !IsRunning(m))
            {
                return null;
            }

            string stamp = m.Groups["stamp"].Value;
            int pid = int.Parse(m.Groups["pid"].Value, NumberStyles.None, CultureInfo.InvariantCulture);
            using SafeFileDescriptor? named = Names.TryName(dir, name);
            if (named is null)
            {
                return pid; // gone already
            }

            if (Xattrs.TryGetTextOfNamed(named, MarkerAttribute) != stamp
                && Xattrs.TryGetTextOfNamed(named, ReplacedAttribute)?.StartsWith(stamp + " ", StringComparison.Ordinal) != true)
            {
                return null;
            }

            // The name and the marker anyone who may write the file can give it, and pid 1 is always there: the process must
            // also hold the file open (a running rewrite holds its copy and the file it replaces for as long as either has
            // the hidden name), where this user may list its descriptors (root: any process); elsewhere the file must be
            // this user's and the process run as its owner (HeldByItsRun). (Before: name and marker were enough, so a user
            // could hide a file of theirs from root's walks, New-BtrfsReflink -Recurse backups included, and the copy a
            // crash left was hidden for good once its pid was another process's after a reboot; a review.)
            return HeldByItsRun(pid, named) ? pid : null;
        }

        /// <summary>
        /// Whether process <paramref name="pid"/>, running and not this one, has the file or directory <paramref name="named"/>
        /// (an O_PATH descriptor) open, where this user may list its descriptors; elsewhere whether the file is this user's
        /// and the process runs as its owner (a user passes over only their own files unseen: another user's cannot be
        /// hidden from root's walks by a process that merely runs, a review).
        /// </summary>
        internal static bool HeldByItsRun(int pid, SafeFileDescriptor named) =>
            pid != Environment.ProcessId // this process's own descriptors hold <paramref name="named"/> itself: never proof (a review)
            && (FileStatus.Of(named) is not FileStatus st
                || (FileGuards.Holds(pid, st) ?? (st.Uid == Metadata.FileSystemUserId && Processes.FileSystemUidOf(pid) == st.Uid)));

        /// <summary>Whether the process a hidden name of the pattern names (<paramref name="m"/>, matched) is still there.</summary>
        private static bool IsRunning(Match m) => Directory.Exists("/proc/" + m.Groups["pid"].Value);

        /// <summary>
        /// Whether <paramref name="name"/> in <paramref name="dir"/> is what a killed run of this module left (the
        /// hidden name of its pattern, its process gone, and the run's marker on it), or was until just now (such a
        /// name gone meanwhile): a walk passes it over; a later rewrite in the directory by its owner (or root, for a replaced file) removes it where <see cref="RemoveStale"/> can prove it.
        /// </summary>
        internal static bool IsLeftover(SafeFileDescriptor dir, string name)
        {
            Match m = TemporaryName().Match(name);
            if (!m.Success || IsRunning(m))
            {
                return false;
            }

            string stamp = m.Groups["stamp"].Value;
            using SafeFileDescriptor? fd = Names.TryOpenForReading(dir, name);
            return fd is null
                ? FileStatus.OfAt(dir, name) is null
                : Xattrs.TryGetText(fd, MarkerAttribute) == stamp || Xattrs.TryGetText(fd, ReplacedAttribute)?.StartsWith(stamp + " ", StringComparison.Ordinal) == true;
        }

        /// <summary>
        /// The regular file in the directory whose name the hidden name <paramref name="hidden"/> was made from
        /// (<see cref="HiddenName"/>) and that carries <paramref name="attribute"/> with <paramref name="value"/>; where the
        /// name was cut short, among the names that begin with what was kept. Null when there is none.
        /// </summary>
        private static string? FindMarked(SafeFileDescriptor dir, string hidden, string stamp, string attribute, string value, Func<FileStatus, bool> fits)
        {
            string prefix = hidden.Substring(1, hidden.Length - 1 - Marker.Length - stamp.Length);
            if (HasMark(dir, prefix, attribute, value))
            {
                return prefix;
            }

            // Cut short (over 196 bytes before the cut), and from a second attempt on followed by "~N" (HiddenName).
            Match attempt = Regex.Match(prefix, "~[1-9][0-9]*$", RegexOptions.CultureInvariant);
            string cut = attempt.Success && Encoding.UTF8.GetByteCount(prefix[..attempt.Index]) >= CutAtLeast ? prefix[..attempt.Index] : prefix;
            if (Encoding.UTF8.GetByteCount(cut) < CutAtLeast)
            {
                return null; // not cut short: that was the name
            }

            // The names that begin with what was kept and carry the mark. Two names a run cut alike can both carry
            // it (one in its grace, the next being copied): then the one that <paramref name="fits"/> (the size and
            // times the pair must share), or none: a mark taken off the wrong file would stay on the right one.
            var marked = new List<string>();
            foreach (string n in DirectoryListing.Names(dir))
            {
                if (n.Length > cut.Length && n.StartsWith(cut, StringComparison.Ordinal) && HasMark(dir, n, attribute, value))
                {
                    marked.Add(n);
                }
            }

            if (marked.Count <= 1)
            {
                return marked.Count == 1 ? marked[0] : null;
            }

            List<string> fitting = marked.FindAll(n => FileStatus.OfAt(dir, n) is FileStatus st && fits(st));
            return fitting.Count == 1 ? fitting[0] : null;
        }

        /// <summary>The fewest bytes a cut name keeps (HiddenName cuts at 196 or 200 bytes, a character of up to 4 bytes at a time).</summary>
        private const int CutAtLeast = 193;

        private static bool HasMark(SafeFileDescriptor dir, string name, string attribute, string value)
        {
            using SafeFileDescriptor? fd = OpenMarked(dir, name, attribute, value);
            return fd is not null;
        }

        /// <summary>
        /// Removes the attribute from the file <paramref name="name"/> if its value is (or, ending in a space, begins with)
        /// <paramref name="value"/>; returns the file's status after (null if it had no such mark).
        /// </summary>
        private static FileStatus? DropMark(SafeFileDescriptor dir, string name, string attribute, string value)
        {
            using SafeFileDescriptor? fd = OpenMarked(dir, name, attribute, value);
            if (fd is null)
            {
                return null;
            }

            Xattrs.TryRemove(fd, attribute);
            return FileStatus.Of(fd);
        }

        /// <summary>
        /// After one of its names was removed: the open file's status once the run's mark <paramref name="attribute"/> is
        /// taken off it, if it lives on under other names; null if that was its last name.
        /// </summary>
        private static FileStatus? Unmark(SafeFileDescriptor fd, string attribute)
        {
            if (FileStatus.Of(fd) is not { Links: > 0 })
            {
                return null;
            }

            Xattrs.TryRemove(fd, attribute);
            return FileStatus.Of(fd);
        }

        /// <summary>The regular file <paramref name="name"/>, open, if its <paramref name="attribute"/> is <paramref name="value"/> (or, ending in a space, begins with it); else null.</summary>
        private static SafeFileDescriptor? OpenMarked(SafeFileDescriptor dir, string name, string attribute, string value)
        {
            SafeFileDescriptor? fd = Names.TryOpenForReading(dir, name); // regular files only
            if (fd is not null
                && Xattrs.TryGetText(fd, attribute) is string text
                && (value.EndsWith(' ') ? text.StartsWith(value, StringComparison.Ordinal) : text == value))
            {
                return fd;
            }

            fd?.Dispose();
            return null;
        }

        private void MarkOriginal(OpenFile original)
        {
            if (FileStatus.Of(original.Handle) is FileStatus now)
            {
                string value = string.Create(CultureInfo.InvariantCulture, $"{Stamp} {now.Size} {now.ModifyTime.Seconds}.{now.ModifyTime.Nanoseconds:D9}");
                if (Xattrs.TrySet(original.Handle, ReplacedAttribute, Encoding.ASCII.GetBytes(value)))
                {
                    originalHandle = original.Handle;
                }
            }
        }

        private void UnmarkOriginal()
        {
            if (originalHandle is SafeFileDescriptor fd)
            {
                originalHandle = null;
                if (!fd.IsClosed)
                {
                    Xattrs.TryRemove(fd, ReplacedAttribute);
                }
            }
        }

        private void Mark()
        {
            // Best effort: without user xattrs (an old tmpfs) the file is simply never removed by RemoveStale.
            marked = Xattrs.TrySet(Handle, MarkerAttribute, Encoding.ASCII.GetBytes(Stamp));
        }

        private void Unmark()
        {
            if (marked)
            {
                if (changeRecorded)
                {
                    Xattrs.TryRemove(Handle, ReplacedChangeAttribute); // only if set: on btrfs each removal is a transaction
                    changeRecorded = false;
                }
                Xattrs.TryRemove(Handle, MarkerAttribute);
                marked = false;
            }
        }

        /// <summary>A stamp and a change time, as <see cref="ReplacedChangeAttribute"/> holds them.</summary>
        private static string StampAndTime(string stamp, FileTime t) => string.Create(CultureInfo.InvariantCulture, $"{stamp} {t.Seconds}.{t.Nanoseconds:D9}");

        /// <summary>
        /// The exchange put another file under the name: one renamed onto the hidden name before it (only a process that may
        /// write to the directory can). The names are exchanged back (the original under its name again); what the hidden
        /// name holds then is not this module's, and is left there; the copy is wherever that process moved it.
        /// </summary>
        private FileOperationException HiddenNameTaken(OpenFile original, string name, string path, string what)
        {
            string hidden = linkedName!;
            int back = Names.TryExchange(dir, hidden, name);
            UnmarkOriginal(); // only now: killed before the exchange back, the original under the hidden name keeps the run's mark
            bool restored = back == 0 && FileStatus.OfAt(dir, name) is FileStatus now && now.SameInode(original.Status);
            linkedName = null; // never removed: another file's
            committed = true;
            Unmark(); // the copy, moved away, is a plain file now
            return new FileOperationException(
                FileErrorKind.ChangedDuringCopy,
                back,
                "renameat2",
                path,
                restored
                    ? $"Cannot {FileGuards.Phrase(what, path)}: at the last moment another file was renamed onto the new copy's temporary name '{hidden}' in the same directory (a process that may write to the directory did it), so the exchange put that file under the name. The names were exchanged back: '{path}' is the original again, unchanged; the file found under '{hidden}' was left there (it is not this module's), and the new copy is wherever that process moved it. Find out what else changes files in that directory."
                    : $"Cannot {FileGuards.Phrase(what, path)}: at the last moment another file was renamed onto the new copy's temporary name '{hidden}' in the same directory, so the exchange put that file under the name, and putting the original back {(back == 0 ? "found yet another file under the name" : $"failed ({Errno.Name(back)})")}. The original is '{hidden}' in the same directory{(back == 0 ? " or under the name" : string.Empty)}. Check both names and rename them by hand.");
        }

        /// <summary>
        /// After an undo, a process opened the new copy in the instant it was under the name: it stays under its
        /// hidden name, without the marker (so no later run removes it as stale), and the error says where it is.
        /// </summary>
        internal FileOperationException KeepOpenedCopy(string path, string what)
        {
            if (existing)
            {
                // An existing file (the converted file another name of the original is being linked to) lives on under its
                // own name: whoever opened it uses that file, and the hidden name, an extra link of it, goes.
                Unmark();
                if (linkedName is not null && Holds(linkedName))
                {
                    _ = Names.TryRemove(dir, linkedName);
                    linkedName = null;
                }

                committed = true;
                return OpenedMeanwhile(path, what, Fate);
            }

            committed = true;
            Unmark();
            return new FileOperationException(
                FileErrorKind.InUse,
                Errno.EAGAIN,
                "fcntl(F_GETLEASE)",
                path,
                $"Cannot {FileGuards.Phrase(what, path)}: a process opened the new copy in the instant it was under the name, while the replacement was being undone. The file that was under the name is back under it, unchanged; the new copy was left as '{linkedName}' in the same directory because a process has it open, and what that process writes goes there, not into '{path}': when it is done, move what it wrote into '{path}' before removing the copy.");
        }

        internal void UndoExchange(string name, string path)
        {
            // The original keeps the run's mark until it is back under its name: a run killed in between leaves it under the
            // hidden name marked, so the next run keeps it and says so unless it is proven unchanged (before: unmarked first,
            // it was left there unseen; a hostile test).
            if (Names.TryExchange(dir, linkedName!, name) is int errno and not 0)
            {
                UnmarkOriginal();
                Unmark(); // the new copy stays under the name: no mark of the run's on it
                committed = true; // both names hold a file someone may need: remove neither
                throw new FileOperationException(
                    FileErrorKind.IOError,
                    errno,
                    "renameat2",
                    path,
                    $"Cannot give '{path}' back its original file after a failed replacement ({Errno.Name(errno)}): the original is now '{linkedName}' in the same directory and the new copy is '{path}'. Rename them by hand.");
            }

            UnmarkOriginal();

            // The hidden name must hold this file again. If another file was renamed onto the name meanwhile, that
            // file is what the exchange just moved: it goes back under the name, and nothing is removed.
            if (FileStatus.Of(Handle) is FileStatus mine && FileStatus.OfAt(dir, linkedName!) is FileStatus now && !now.SameInode(mine))
            {
                committed = true; // keep whatever the hidden name holds
                int again = Names.TryExchange(dir, linkedName!, name);
                throw new FileOperationException(
                    FileErrorKind.ChangedDuringCopy,
                    again,
                    "renameat2",
                    path,
                    again == 0
                        ? $"Cannot give '{path}' back its original file: while it was being replaced, a process opened the original and another file was renamed onto the name. That file was left under the name; the original (which that process may have written to) is kept as '{linkedName}' in the same directory; the new copy was discarded."
                        : $"Cannot give '{path}' back its original file: another file was renamed onto the name meanwhile, and putting it back failed ({Errno.Name(again)}): the original is under the name again, and the file renamed onto it is now '{linkedName}' in the same directory. Rename them by hand.");
            }
        }

        internal static FileOperationException OpenedMeanwhile(string path, string what, string fate = "the copy was removed") =>
            new(
                FileErrorKind.InUse,
                Errno.EAGAIN,
                "fcntl(F_GETLEASE)",
                path,
                $"Cannot {FileGuards.Phrase(what, path)}: another process opened it while it was being replaced. It was left exactly as it was, under its name, for that process; {fate}. Try again when nothing uses the file.");

        private void EnsureLinked(string name, string path)
        {
            if (linkedName is not null)
            {
                return;
            }

            Mark();
            string hidden = HiddenName(name, Marker, Stamp);
            int errno = Names.TryLink(Handle, dir, hidden);
            for (int attempt = 1; errno == Errno.EEXIST && attempt < 10; attempt++)
            {
                // Taken already (two names of this run alike in their first 200 bytes): the same stamp, a number before it.
                hidden = HiddenName(name, Marker, Stamp, attempt);
                errno = Names.TryLink(Handle, dir, hidden);
            }

            if (errno != 0)
            {
                throw FileOperationException.FromErrno(errno, "linkat", path, "Cannot give the new file a name next to", "The original is unchanged.");
            }

            linkedName = hidden;
        }

        private static FileOperationException LinkFailure(int errno, string path) =>
            errno == Errno.EEXIST
                ? new FileOperationException(FileErrorKind.AlreadyExists, errno, "linkat", path, $"Cannot create '{path}': a file of that name appeared meanwhile. It was left as it is; the new file was discarded.")
                : FileOperationException.FromErrno(errno, "linkat", path, "Cannot create", "Nothing was left behind.");

        /// <summary>What makes a hidden name this run's: its pid and 32 random bits ("1234-0badc0de"), also the marker's value.</summary>
        internal static string NewStamp() =>
            Environment.ProcessId.ToString(CultureInfo.InvariantCulture) + "-"
            + Convert.ToHexString(System.Security.Cryptography.RandomNumberGenerator.GetBytes(4)).ToLowerInvariant();

        /// <summary>
        /// ".NAME" + <paramref name="marker"/> + <paramref name="stamp"/>, the name cut so the whole stays within
        /// NAME_MAX; from <paramref name="attempt"/> 1 on, "~N" after the (shorter) cut name, for a name taken already.
        /// </summary>
        internal static string HiddenName(string name, string marker, string stamp, int attempt = 0)
        {
            // NAME_MAX is 255 bytes: keep a recognizable prefix of the name.
            string prefix = name;
            int most = attempt == 0 ? 200 : 196;
            while (Encoding.UTF8.GetByteCount(prefix) > most)
            {
                // Never between the two halves of a character outside the BMP (an emoji): a lone half is written
                // as U+FFFD, and the leftover could no longer be matched to the name it was made from.
                prefix = prefix[..^(prefix.Length > 1 && char.IsSurrogatePair(prefix[^2], prefix[^1]) ? 2 : 1)];
            }

            return "." + prefix + (attempt == 0 ? string.Empty : "~" + attempt.ToString(CultureInfo.InvariantCulture)) + marker + stamp;
        }

        private static FileOperationException CreateFailure(int errno, string dirPath, string name) =>
            FileOperationException.FromErrno(
                errno,
                "open(O_TMPFILE)",
                Path.Combine(dirPath, name),
                "Cannot create a new file next to",
                errno is Errno.EACCES or Errno.EPERM ? "Writing into its directory needs write permission there. Nothing was changed." : "Nothing was changed.");

        [GeneratedRegex(@"^\..*\.~btrfs-(?<stamp>(?<pid>[1-9]\d*)-[0-9a-f]{8})$", RegexOptions.CultureInvariant)]
        private static partial Regex TemporaryName();
    }

    /// <summary>A file <see cref="TemporaryFile.RemoveStale"/> removed: a killed run's temporary file, or the file it had replaced.</summary>
    internal readonly record struct StaleFile(string Name, bool WasReplaced)
    {
        /// <summary>The file in the directory whose mark of the killed run was taken off (its change time moved), as it is now; if any.</summary>
        internal FileStatus? Unmarked { get; init; }

        /// <summary>The removed name's file, which lives on under other names (the run's mark taken off it), as it is now; null when the name was its last.</summary>
        internal FileStatus? LivesOn { get; init; }

        /// <summary>Not removed: marked by a killed run as the file it replaced, but not proven to be that file as it was (see <see cref="Describe"/>).</summary>
        internal bool Left { get; init; }

        /// <summary>Whether this removal took a mark off <paramref name="file"/> (moved its change time, no writer's doing).</summary>
        internal bool Touched(in FileStatus file) => Unmarked?.SameInode(file) == true || LivesOn?.SameInode(file) == true;

        /// <summary>What was removed and why it was this module's, for a notice or warning.</summary>
        internal string Describe(string directory)
        {
            string path = System.IO.Path.Combine(directory, Name);
            if (Left)
            {
                return $"Left '{path}' as it is: a run of this module that was killed marked it as the old file it had just replaced, but it cannot be proven to be that file as it was then (it was written or changed since, the file that took its name was replaced in turn, or the run was killed before it could record how the file was), so it is not removed. It holds a whole old copy of the file's data: delete it yourself if it is not needed.";
            }

            if (LivesOn is FileStatus lives)
            {
                string others = lives.Links == 1 ? "its other name" : $"its {lives.Links} other names";
                return WasReplaced
                    ? $"Removed the name '{path}': the old file a run of this module that was killed had just replaced kept it (the new one is in place under its name). Only that name was removed: the old file lives on under {others}, without the module's mark (it carried the mark, was not changed since, and nobody had it open)."
                    : $"Removed the name '{path}': an extra name a run of this module that was killed had given a file (it carries the module's marker, and its process no longer exists). Only that name was removed: the file lives on under {others}, without the module's mark.";
            }

            return WasReplaced
                ? $"Removed '{path}': the old file a run of this module that was killed had just replaced (the new one is in place under its name; the old one carries the module's marker, belongs to this user, was not changed since, and nobody has it open)."
                : $"Removed '{path}': a temporary file left by a run of this module that was killed (it carries the module's marker, belongs to this user, and its process no longer exists).";
        }
    }

    /// <summary>Tests only: called with the hidden name while <see cref="TemporaryFile.Replace"/> holds both leases.</summary>
    internal sealed class ExchangeHooks
    {
        /// <summary>Just before the names are exchanged: the hidden name holds the new file, the original is marked.</summary>
        internal Action<string>? BeforeExchange { get; init; }

        /// <summary>Just after the names were exchanged: the hidden name holds the original.</summary>
        internal Action<string>? AfterExchange { get; init; }

        /// <summary>Just after an exchange was undone: the hidden name holds the new file again.</summary>
        internal Action<string>? AfterUndo { get; init; }
    }
}

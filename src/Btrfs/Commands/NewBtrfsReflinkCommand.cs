namespace Btrfs.Commands
{
    using System;
    using System.Collections.Generic;
    using System.IO;
    using System.Management.Automation;
    using Btrfs.Core;
    using Btrfs.Kernel;

    /// <summary>New-BtrfsReflink: instant copies that share extents, made so they succeed where they can and explained where they cannot.</summary>
    [Cmdlet(VerbsCommon.New, "BtrfsReflink", DefaultParameterSetName = LiteralPathSet, SupportsShouldProcess = true, ConfirmImpact = ConfirmImpact.Medium, HelpUri = HelpLinks.Pages + "New-BtrfsReflink.md")]
    [OutputType(typeof(ReflinkResult), typeof(ReflinkTreeResult))]
    /// <remarks>
    /// With -Recurse, a replaced file (-Force) keeps its old inode under a hidden name and a write lease for a
    /// grace of 50 ms after the exchange of names (see <see cref="PendingReplacement"/>): a settler waits those
    /// graces out on a thread of its own while the next files are cloned, and a file is counted (or its error
    /// written, if the exchange had to be undone) when its grace is over, in the order the files came, with at
    /// most <see cref="MostSettling"/> waiting. Any other error or warning first waits for the files before
    /// it. Each grace is waited out before the next file where <see cref="Overlapping"/> says so.
    /// </remarks>
    public sealed class NewBtrfsReflinkCommand : RecursiveFileCmdletBase, IDisposable
    {
        private const int MostSettling = 64;
        private readonly Queue<Settling> settling = new();
        private GraceSettler? settler;
        private bool? overlapping;
        private ProgressBars? bars;
        private ReflinkTreeTally? tree;
        private readonly ReflinkSession session = new();
        private bool? destinationWasDirectory;
        private int sources;

        /// <summary>The new file, or an existing directory to copy into.</summary>
        [Parameter(Mandatory = true, Position = 1)]
        [ValidateNotNullOrEmpty]
        [NotAScriptBlock("Give the destination path itself (a directory to copy several files into), or copy one file per call: ForEach-Object { New-BtrfsReflink -LiteralPath $_.FullName -Destination ($_.FullName + '.bak') }.")]
        [PipedPath]
        public string Destination { get; set; } = string.Empty;

        /// <summary>Replace an existing destination (or write a range into it); never one in use.</summary>
        [Parameter]
        public SwitchParameter Force { get; set; }

        /// <summary>With -Force: where no write lease can prove that nobody has the destination open, rely on the /proc scan alone.</summary>
        [Parameter]
        public SwitchParameter AssumeNotInUse { get; set; }

        /// <summary>What to do when a reflink is impossible: None (an error) or Copy (copy the data, like cp --reflink=auto).</summary>
        [Parameter]
        public ReflinkFallback Fallback { get; set; } = ReflinkFallback.None;

        /// <summary>First byte of the source range to clone (FICLONERANGE).</summary>
        [Parameter]
        [Alias("Offset")] // Invoke-BtrfsDedupe's name for it
        [ValidateRange(0, long.MaxValue)]
        public long SourceOffset { get; set; }

        /// <summary>Bytes of the range; default to the source's end.</summary>
        [Parameter]
        [ValidateRange(1, long.MaxValue)]
        public long Length { get; set; }

        /// <summary>Where the range goes in the destination; default the source offset.</summary>
        [Parameter]
        [ValidateRange(0, long.MaxValue)]
        public long DestinationOffset { get; set; }

        /// <summary>
        /// With -Recurse: one ReflinkResult per file as it is made (the tree is then built in place, each
        /// file appearing whole under its name, so the objects can be piped on at once) instead of one
        /// ReflinkTreeResult when the tree is complete.
        /// </summary>
        [Parameter]
        public SwitchParameter PassThru { get; set; }

        /// <summary>
        /// Do not write the filesystem back (syncfs) at the end: faster, as cp without sync; a crash soon
        /// after may lose copies (never leaving a partial file or tree under its name).
        /// </summary>
        [Parameter]
        public SwitchParameter NoSync { get; set; }

        /// <summary>Keep mode, owner, group and timestamps (like cp -p).</summary>
        [Parameter]
        public SwitchParameter Preserve { get; set; }

        private ReflinkOptions Options { get; set; } = new();

        private string DestinationPath { get; set; } = string.Empty;

        /// <inheritdoc/>
        protected override void BeginProcessing()
        {
            Options = new ReflinkOptions
            {
                Force = Force.IsPresent,
                AssumeNotInUse = AssumeNotInUse.IsPresent,
                Fallback = Fallback,
                SourceOffset = Bound(nameof(SourceOffset)) ? SourceOffset : null,
                Length = Bound(nameof(Length)) ? Length : null,
                DestinationOffset = Bound(nameof(DestinationOffset)) ? DestinationOffset : null,
                Preserve = Preserve.IsPresent,
                MountsLookedForAtExchange = !WhatIfInEffect,
            };
            if (Options.IsRange && Recursing)
            {
                ThrowTerminatingError(ErrorRecords.ConflictingParameters("RangeWithRecurse", "-SourceOffset, -Length and -DestinationOffset clone a range of one file; they cannot be combined with -Recurse."));
            }

            if (PathBinding.UnresolvedFileSystemPath(this, Destination, out string destination) is { } notAFile)
            {
                ThrowTerminatingError(notAFile);
            }

            DestinationPath = destination;

            bars = new ProgressBars(this, "New-BtrfsReflink", 0x5246);
        }

        /// <inheritdoc/>
        protected override void EndProcessing()
        {
            Drain(all: true);
            bars?.Complete();
            // One syncfs per destination filesystem, not one fsync per file.
            Flush();
        }

        /// <summary>
        /// Waits out the graces still running (also when the pipeline was stopped: nothing is written then),
        /// then closes the directories the session kept open.
        /// </summary>
        public void Dispose()
        {
            settler?.Dispose();
            while (settling.Count > 0)
            {
                Settling s = settling.Dequeue();
                s.Pending.Dispose();
                s.Copy.Dispose();
            }

            session.Dispose();
        }

        /// <inheritdoc/>
        private protected override void BeforeError() => Drain(all: true);

        /// <summary>
        /// Whether the graces of replaced files overlap the next files (only in a tree): not with -PassThru
        /// (whatever takes the objects may stop the pipeline after any of them), not when a message ends the
        /// pipeline or asks (-ErrorAction or -WarningAction Stop or Inquire), not when each file is confirmed.
        /// </summary>
        private bool Overlapping => overlapping ??= !(PassThru.IsPresent
            || Preferences.MessagesStop(this)
            || (MyInvocation.BoundParameters.TryGetValue("Confirm", out object? c)
                ? c is SwitchParameter { IsPresent: true }
                : GetVariableValue("ConfirmPreference") is ConfirmImpact p && p != ConfirmImpact.None && p <= ConfirmImpact.Medium));

        /// <inheritdoc/>
        protected override void ProcessFile(string path)
        {
            // Several sources go into an existing directory only, as with cp ("target is not a directory"): the
            // first would take the name, and the others would be copied inside it (a tree) or onto it (a file).
            destinationWasDirectory ??= Directory.Exists(DestinationPath);
            if (sources++ > 0 && destinationWasDirectory == false)
            {
                WriteError(new ErrorRecord(
                    new PSArgumentException($"Cannot copy '{path}' to '{DestinationPath}': several sources were given, and '{DestinationPath}' was not an existing directory when the command began (the first source was copied to that name). Several sources are copied only into an existing directory, as with cp: create it first (New-Item -ItemType Directory), then copy them into it. Nothing was copied for '{path}'."),
                    ErrorRecords.Ids.DestinationNotADirectory,
                    ErrorCategory.InvalidArgument,
                    path));
                return;
            }

            bool isDirectory = FileStatus.OfPath(path, followLinks: true) is { IsDirectory: true };
            if (!isDirectory && DestinationPath.EndsWith('/') && !Directory.Exists(DestinationPath))
            {
                // As cp says "Not a directory" (before: "the path is longer than the 4,095 bytes the kernel accepts" for a
                // path of 25; a hostile test).
                string named = DestinationPath.TrimEnd('/');
                WriteError(new ErrorRecord(
                    new PSArgumentException($"Cannot copy '{path}' to '{DestinationPath}': a destination that ends with '/' is a directory to copy into, and '{named}' {(FileStatus.OfPath(named, followLinks: false) is null ? "does not exist" : "is not a directory")}. Create the directory first (New-Item -ItemType Directory), or give the new file's name without the '/'. Nothing was copied."),
                    ErrorRecords.Ids.DestinationNotADirectory,
                    ErrorCategory.InvalidArgument,
                    path));
                return;
            }

            if (!isDirectory)
            {
                string target = Directory.Exists(DestinationPath) ? System.IO.Path.Combine(DestinationPath, System.IO.Path.GetFileName(path.TrimEnd('/'))) : DestinationPath;
                CopyOne(path, target);
                return;
            }

            ThrowIfDirectoryWithoutRecurse(path, Recursing, "clone", "mirror the tree (directories created, files cloned, symbolic links recreated)");
            Mirror(path);
        }

        private bool Bound(string name) => MyInvocation.BoundParameters.ContainsKey(name);

        private void CopyOne(string source, string destination)
        {
            using ReflinkCopy copy = ReflinkCopy.Prepare(source, destination, Options, session);
            Run(copy, source);
        }

        /// <summary>Asks, clones, and only then warns (a warning about a copy that was refused would mislead).</summary>
        private ReflinkResult? Run(ReflinkCopy copy, string source)
        {
            if (!Preferences.ShouldProcess(this, copy.Destination, What(copy, source)))
            {
                return null;
            }

            ReflinkResult result = copy.Run(StopToken);
            Finished(copy, result);
            return result;
        }

        /// <summary>What a copy would do, for -WhatIf and -Confirm.</summary>
        private string What(ReflinkCopy copy, string source)
        {
            if (copy.Method == ReflinkMethod.HardLink)
            {
                return $"Replace this file by a hard link to '{copy.LinkTarget}' (as '{source}' is another name of one file; nothing is cloned)";
            }

            string what = copy.Method == ReflinkMethod.Reflink
                ? $"Clone '{source}' ({SizeFormatter.Format(copy.Length)}{(copy.ExtentsCounted ? $", {copy.ExtentCount:N0} extents" : string.Empty)}, no data copied)"
                : copy.DataBytes is long data && data != copy.Length
                    ? $"Copy the data of '{source}' ({SizeFormatter.Format(data)} of data, holes skipped; file size {SizeFormatter.Format(copy.Length)})"
                    : $"Copy the data of '{source}' ({SizeFormatter.Format(copy.Length)})";
            if (copy.Method == ReflinkMethod.Copy && copy.CopyPreallocatedPastEndBytes > 0)
            {
                // What the copy preallocates again is said as the conversions say it (a hostile review: 200 MiB past the end
                // was left out of the preview, and the copy took it).
                what += $"; needs {SizeFormatter.Format(copy.CopyNeedsBytes)}{DataCopy.PreallocatedPastEndNote(copy.CopyPreallocatedPastEndBytes, "the source")}";
            }

            if (copy.DestinationExists)
            {
                what += Options.IsRange ? " into this existing file" : ", replacing this file";
            }

            return what;
        }

        /// <summary>
        /// As <see cref="Run(ReflinkCopy, string)"/> for a file of a tree: a replacement's grace is handed to the
        /// settler when graces overlap (the result then comes from <see cref="Drain"/>). True when the copy was
        /// queued: <see cref="Drain"/> disposes it.
        /// </summary>
        private bool Start(ReflinkCopy copy, string source, Action<ReflinkResult> settled)
        {
            if (!Overlapping || !copy.DestinationExists)
            {
                if (Run(copy, source) is ReflinkResult made)
                {
                    settled(made);
                }

                return false;
            }

            if (!Preferences.ShouldProcess(this, copy.Destination, What(copy, source)))
            {
                return false;
            }

            ReflinkResult result = copy.Start(StopToken, settler ??= new GraceSettler(), out PendingReplacement? pending);
            if (pending is null)
            {
                Finished(copy, result);
                settled(result);
                return false;
            }

            settling.Enqueue(new Settling(copy, result, pending, settled));
            return true; // queued: the caller reports the progress (which throws once the pipeline is stopped, and the copy, its grace running, must stay open)
        }

        /// <summary>
        /// Warnings (only now: a warning about a copy that was refused would mislead), then the result; the results
        /// before it first, unless <paramref name="inOrder"/> (called by <see cref="Drain"/>, which wrote them).
        /// </summary>
        private void Finished(ReflinkCopy copy, ReflinkResult result, bool inOrder = false)
        {
            if (copy.Warnings.Count > 0 && !inOrder)
            {
                Drain(all: true);
            }

            foreach (string w in copy.Warnings)
            {
                WriteWarning(w);
            }

            Emit(result);
        }

        /// <summary>
        /// Counts the files whose grace is over, in the order they came: all of them with <paramref name="all"/>
        /// (waiting), else those settled at the head of the queue and, while more than <see cref="MostSettling"/>
        /// wait, the oldest (waiting for it). A replacement undone (someone opened the old file in its grace) is its error.
        /// </summary>
        private void Drain(bool all)
        {
            while (settling.Count > 0 && (all || settling.Count > MostSettling || settling.Peek().Pending.IsSettled))
            {
                Settling s = settling.Dequeue();
                try
                {
                    s.Pending.Finish();
                    Finished(s.Copy, s.Result, inOrder: true);
                    s.Settled(s.Result); // only a replacement that stayed is a copy later names may be linked to
                }
                catch (FileOperationException ex)
                {
                    if (tree is { } t)
                    {
                        t.Errors++;
                    }

                    WriteFileError(ex);
                }
                finally
                {
                    s.Pending.Dispose();
                    s.Copy.Dispose();
                }
            }
        }

        /// <summary>Counts a made file into the tree's tally (whose one result comes at the end), or writes it out.</summary>
        private void Emit(ReflinkResult result)
        {
            if (tree is { } t)
            {
                t.Files += result.Method == ReflinkMethod.HardLink ? 0 : 1;
                t.HardLinks += result.Method == ReflinkMethod.HardLink ? 1 : 0;
                t.CopiedFiles += result.Method == ReflinkMethod.Copy ? 1 : 0;
                t.Bytes += result.Length;
                bars!.Report(t.Files + t.HardLinks + settling.Count); // with those still in their grace, as when they were queued
                if (!PassThru.IsPresent)
                {
                    return;
                }
            }

            WriteObject(result);
        }

        private void Mirror(string sourceRoot)
        {
            string root = sourceRoot.Length > 1 ? sourceRoot.TrimEnd('/') : sourceRoot;
            string destRoot = Directory.Exists(DestinationPath) ? System.IO.Path.Combine(DestinationPath, System.IO.Path.GetFileName(root)) : DestinationPath;
            var clock = System.Diagnostics.Stopwatch.StartNew();

            // Without -PassThru nobody sees a file before the copy has finished: a new destination is built
            // hidden beside its name and appears with one rename at the end.
            long begun = System.Diagnostics.Stopwatch.GetTimestamp();
            using TreeMirror mirror = TreeMirror.Start(root, destRoot, Options, session, CrossFileSystem.IsPresent, Filter, stage: !PassThru.IsPresent);

            // -Preserve sets a directory's times when it is left: the hidden names of files in their grace go first.
            mirror.BeforeLeaving = () => Drain(all: true);

            // Files first (a listing, nothing opened or examined), so progress has a percentage.
            var counts = new ReflinkTreeTally();
            tree = counts;
            bars!.StartFile(root, mirror.TotalFiles(), "files");
            bool made = false;
            try
            {
                foreach (MirrorItem item in mirror.Items())
                {
                    StopToken.ThrowIfCancellationRequested();
                    if (mirror.Staged && ProcessEnd.Stops(begun))
                    {
                        // SIGTERM or SIGHUP: the process is about to end. The tree being built is removed (by the mirror,
                        // as the command ends), as on Ctrl+C, and the process's end waits for that. Should the process go
                        // on (something cancelled the signal), the error says what happened (a review).
                        ThrowTerminatingError(new ErrorRecord(
                            new OperationCanceledException($"Stopped copying '{root}' to '{destRoot}': this process was asked to end (SIGTERM or SIGHUP). The tree being built is removed; nothing appears under '{destRoot}'. Run the copy again."),
                            "StoppedBySignal",
                            ErrorCategory.OperationStopped,
                            root));
                    }

                    try
                    {
                        MirrorOne(mirror, item, counts);
                        made |= item.Source == root && item.Made;
                    }
                    catch (FileOperationException ex)
                    {
                        Drain(all: true); // the files before it first
                        // A directory nobody could be asked about is not made: what lies below it is left out
                        // without an error each, as below a directory that could not be made.
                        item.Failed |= item.Kind == MirrorItemKind.Directory && ex.Kind == FileErrorKind.ConfirmationNotPossible;
                        counts.Errors++;

                        // The filesystems' own refusal (another filesystem, no reflinks there) holds for every file:
                        // one error, the walk stops, and a staged tree is removed unpublished with the mirror (before:
                        // an error per file, and an empty tree of directories appeared).
                        if (WriteWalkedError(Listed(ex, item.Source), root, mirror.Staged ? "Nothing was created." : "The directories made for it so far are left, empty."))
                        {
                            return;
                        }
                    }
                }

                Drain(all: true);
                foreach (string notice in mirror.Notices)
                {
                    WriteWarning(notice);
                }
            }
            finally
            {
                tree = null;
                bars.EndFile();
            }

            if (made && !PassThru.IsPresent && (!mirror.Staged || mirror.Published))
            {
                // Written back before the tree's result says it is there.
                counts.Errors += Flush();

                WriteObject(counts.ToResult(destRoot, root, mirror.Staged, clock.Elapsed));
            }
        }

        private void MirrorOne(TreeMirror mirror, MirrorItem item, ReflinkTreeTally counts)
        {
            bool ready = item.Parent == MirrorParent.Ready;

            // Files in their grace are counted as they settle; before anything this item writes (an error, a
            // warning), every one before it; before a file that may be one of theirs (another name of a file
            // replaced, whose opening would break the lease that guards it), every one.
            Drain(all: item.Kind is not (MirrorItemKind.File or MirrorItemKind.Directory) || (settling.Count > 0 && item.Kind == MirrorItemKind.File && ready && mirror.HasOtherNames(item)));
            switch (item.Kind)
            {
                case MirrorItemKind.Directory:
                    if (Preferences.ShouldProcess(this, item.Target, $"Create the directory (mirror of '{item.Source}')") && ready)
                    {
                        mirror.MakeDirectory(item);
                        counts.Directories += item.Created && item.Target != mirror.DestinationRoot ? 1 : 0;
                    }

                    break;
                case MirrorItemKind.File when ready:
                    ReflinkCopy? copy = null;
                    string? notLinked = null;
                    if (mirror.HardLinkTargetOf(item, out bool nameTaken) is string first)
                    {
                        Drain(all: true); // the copy to link to has settled (kept or undone)
                        // Another name of a file this run copied already: a hard link to that copy, as in the source; in
                        // place of the file of that name there (with -Force, and its checks), as a clone would replace it.
                        string? why = null;
                        if (nameTaken)
                        {
                            copy = mirror.PrepareLink(item, out why);
                        }
                        else if (!Preferences.ShouldProcess(this, item.Target, $"Create a hard link to '{first}' (as '{item.Source}' is another name of one file; nothing is cloned)"))
                        {
                            break;
                        }
                        else if (mirror.MakeHardLink(item, out ReflinkResult? link) is string notMade)
                        {
                            why = notMade;
                        }
                        else
                        {
                            Emit(link!);
                            break;
                        }

                        notLinked = why is null ? null : $"'{item.Target}' is a clone of its own, not a hard link to '{first}' as in the source: {why}.";
                    }

                    copy ??= mirror.PrepareFile(item);
                    bool queued = false;
                    try
                    {
                        ReflinkCopy made = copy;
                        queued = Start(copy, item.Source, result =>
                        {
                            if (made.Method == ReflinkMethod.HardLink)
                            {
                                mirror.Linked(made);
                            }
                            else
                            {
                                // Said once the clone is made (before: also ahead of a clone that was then refused).
                                if (notLinked is not null)
                                {
                                    WriteWarning(notLinked);
                                }

                                mirror.Copied(item, made, result);
                            }
                        });
                    }
                    finally
                    {
                        if (!queued)
                        {
                            copy.Dispose();
                        }
                    }

                    // Only now: once the pipeline is stopped this throws, and a copy queued in its grace is disposed only
                    // when the grace is over (before: disposed here, it closed the descriptor the replaced file's lease was
                    // on, and the grace ended with an error instead of its checks).
                    if (queued && tree is { } t)
                    {
                        bars!.Report(t.Files + t.HardLinks + settling.Count); // handled so far, some still in their grace
                    }

                    break;
                case MirrorItemKind.File:
                    Preferences.ShouldProcess(this, item.Target, $"Clone '{item.Source}' (its directory is not made)");
                    break;
                case MirrorItemKind.SymbolicLink:
                    if (Preferences.ShouldProcess(this, item.Target, $"Create a symbolic link like '{item.Source}'") && ready)
                    {
                        mirror.MakeLink(item, Force.IsPresent);
                        counts.SymbolicLinks++;
                    }

                    break;
                case MirrorItemKind.Error:
                    counts.Errors++;
                    WriteError(ErrorRecords.From(item.Error!));
                    break;
                case MirrorItemKind.Skipped when item.Entry.Kind is WalkEntryKind.OtherFileSystem || (item.Entry.Kind is WalkEntryKind.RunningRewrite && !TreeWalker.IsAnotherUsers(item.Entry)):
                    WriteVerbose(item.Message!);
                    break;
                default:
                    WriteWarning(item.Message!);
                    break;
            }
        }

        /// <summary>The one write-back (syncfs) of every filesystem written to, unless -NoSync; returns the failures reported.</summary>
        private int Flush()
        {
            if (NoSync.IsPresent)
            {
                return 0;
            }

            IReadOnlyList<FileOperationException> failures = session.Flush();
            foreach (FileOperationException failed in failures)
            {
                WriteError(ErrorRecords.From(failed));
            }

            return failures.Count;
        }

        /// <summary>A file of a tree whose replacement is in its grace: its copy (holding the lease on the replaced file) and its result, not counted yet.</summary>
        private sealed record Settling(ReflinkCopy Copy, ReflinkResult Result, PendingReplacement Pending, Action<ReflinkResult> Settled);
    }
}

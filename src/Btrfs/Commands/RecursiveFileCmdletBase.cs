namespace Btrfs.Commands
{
    using System;
    using System.Collections.Generic;
    using System.Management.Automation;
    using System.Threading.Tasks;
    using Btrfs.Core;
    using Btrfs.Kernel;

    /// <summary>
    /// The shared plumbing of every cmdlet with -Recurse: -Recurse, -CrossFileSystem, and -Include,
    /// -Exclude and -Depth as Get-ChildItem has them, applied by the one <see cref="TreeWalker"/> (an
    /// excluded directory is neither handed out nor entered; -Include picks files; -Depth implies -Recurse).
    /// Files named directly (or piped) are taken or left by the same -Include and -Exclude; a directory
    /// named directly is always the starting point.
    /// </summary>
    public abstract class RecursiveFileCmdletBase : FileCmdletBase
    {
        private WalkFilter? filter;
        private WalkedTrees? walked;

        /// <summary>For a directory: everything below it, as each cmdlet says.</summary>
        [Parameter]
        public SwitchParameter Recurse { get; set; }

        /// <summary>With -Recurse: also enter other filesystems and btrfs subvolumes.</summary>
        [Parameter]
        public SwitchParameter CrossFileSystem { get; set; }

        /// <summary>Only files whose name matches one of these wildcard patterns (directories are still entered).</summary>
        [Parameter]
        [SupportsWildcards]
        [ValidateNotNullOrEmpty]
        [ValidWildcards]
        public string[] Include { get; set; } = Array.Empty<string>();

        /// <summary>Leave out files and directories (and everything below them) whose name matches one of these wildcard patterns.</summary>
        [Parameter]
        [SupportsWildcards]
        [ValidateNotNullOrEmpty]
        [ValidWildcards]
        public string[] Exclude { get; set; } = Array.Empty<string>();

        /// <summary>Levels of directories below a starting directory to enter (0: only its own entries); implies -Recurse.</summary>
        [Parameter]
        [ValidateRange(0, int.MaxValue)]
        public int Depth { get; set; }

        /// <summary>What the walk takes, from -Include, -Exclude and -Depth.</summary>
        private protected WalkFilter Filter => filter ??= new WalkFilter(
            Patterns(Include),
            Patterns(Exclude),
            MyInvocation.BoundParameters.ContainsKey(nameof(Depth)) ? Depth : null);

        /// <summary>The trees this pipeline has walked, so none of their files is processed twice.</summary>
        private WalkedTrees Walked => walked ??= new WalkedTrees(Filter, CrossFileSystem.IsPresent);

        /// <summary>Directories named after an earlier walk with -Depth reached them: how many levels below each that walk processed.</summary>
        private readonly Dictionary<string, int> partlyWalked = new(StringComparer.Ordinal);

        /// <summary>
        /// Whether the path being taken was named as such: given literally or without wildcards, not piped in nor matched
        /// by a pattern (then a directory -Include does not take is left out, as Get-Item dir/* -Include does; a review).
        /// </summary>
        private bool NamedDirectly =>
            !MyInvocation.ExpectingInput && (ParameterSetName == LiteralPathSet || CurrentInputText is not string given || !WildcardPattern.ContainsWildcardCharacters(given));

        /// <summary>Whether a directory named directly, without -Recurse, is processed itself (Test-NoCow, Set-NoCow), not refused.</summary>
        private protected virtual bool ProcessesDirectories => false;

        /// <summary>True with -Recurse, and with -Depth (which implies it, as with Get-ChildItem).</summary>
        private protected bool Recursing => Recurse.IsPresent || MyInvocation.BoundParameters.ContainsKey(nameof(Depth));

        /// <summary>
        /// A path named directly or piped in is left out (verbose) when -Include or -Exclude does not take
        /// its name: a file as in a walk; a directory (or a link to one) when -Exclude names it, and,
        /// without -Recurse, when -Include does not take it. With -Recurse a directory is a starting
        /// point even when -Include does not take its own name (it is walked, not processed).
        /// </summary>
        private protected override bool Takes(string path)
        {
            if (EachFileOncePerPipeline && Walked.Covering(path, out int level) is string root)
            {
                if (Recursing && Filter.Depth is not null && FileStatus.OfPath(path, followLinks: false) is { IsDirectory: true })
                {
                    // Walked from here with -Depth, it reaches deeper than the earlier walk did from its own start:
                    // the levels that walk reached below it are passed over, the rest are processed.
                    int reached = Walked.LevelsReachedBelow(level);
                    partlyWalked[path] = reached;
                    WriteVerbose($"'{path}' and {reached} level(s) below it were already reached by the walk of '{root}' in this pipeline: only what lies deeper is processed.");
                }
                else
                {
                    WriteVerbose($"'{path}' was already reached by the walk of '{root}' in this pipeline: each file is processed once.");
                    return false;
                }
            }

            if (!Filter.TestsNames)
            {
                return true;
            }

            string name = System.IO.Path.GetFileName(path.Length > 1 ? path.TrimEnd('/') : path);
            bool directory = FileStatus.OfPath(path, followLinks: true) is { IsDirectory: true };
            bool taken = !directory ? Filter.TakesFile(name)
                : Recursing ? Filter.TakesDirectory(name)
                : Filter.ProcessesDirectory(name);
            if (!taken && directory && !Recursing && Filter.TakesDirectory(name) && NamedDirectly)
            {
                // Left out by -Include alone: the caller meant the files in it (as Get-ChildItem dir -Include lists them), and
                // nothing at all, not even $false from Test-NoCow, came back (a hostile test). Said as an error, as a
                // directory without -Recurse is to every cmdlet that takes files only.
                _ = GuardedFor(path, () => throw new FileOperationException(
                    FileErrorKind.IsDirectory,
                    0,
                    "stat",
                    path,
                    $"'{path}' is a directory, and -Include, which does not take its name, picks the files a walk finds. Add -Recurse to take the files below it whose names -Include takes (-Depth 0: only those directly in it){(ProcessesDirectories ? "; without -Include, the directory itself is taken" : string.Empty)}."));
                return false;
            }

            if (!taken)
            {
                WriteVerbose($"Leaving out '{path}': -Include or -Exclude does not take its name.");
            }

            return taken;
        }

        /// <summary>Error records <see cref="ForEachInTree"/> wrote (an entry that could not be read or processed).</summary>
        protected int TreeErrors { get; private set; }

        /// <summary>
        /// Of <see cref="TreeErrors"/>, those no run of this user can get past until someone acts: names that are not
        /// valid UTF-8 (one per directory; renamed first) and directories this user may not open or list (their
        /// permissions changed first, or left out with -Exclude).
        /// </summary>
        protected int UnreachableErrors { get; private set; }

        /// <summary>
        /// Runs <paramref name="action"/> on <paramref name="root"/> and every regular file and
        /// directory below it (a directory before its contents), through the one
        /// <see cref="TreeWalker"/>. A failure on one entry, and a directory that cannot be read, is
        /// an error record and the walk goes on; symbolic links, FIFOs, devices and other filesystems
        /// are skipped with a verbose message. Stops between entries on Ctrl+C. <paramref name="again"/>
        /// walks a tree this pipeline walked before once more (Invoke-BtrfsDefrag's next pass).
        /// </summary>
        protected void ForEachInTree(string root, Action<WalkEntry> action, bool again = false)
        {
            var walkedBefore = new HashSet<string>(StringComparer.Ordinal);
            int passOver = !again && partlyWalked.Remove(root, out int levels) ? levels : -1; // -1: nothing; 0: the root itself
            foreach (WalkEntry entry in Walk(root, walkedBefore, again))
            {
                StopToken.ThrowIfCancellationRequested();
                if (passOver >= 0 && WalkedTrees.LevelBelow(root, entry.Path) <= passOver)
                {
                    continue; // an earlier walk in this pipeline processed it (or reported it)
                }

                switch (entry.Kind)
                {
                    case WalkEntryKind.Directory when walkedBefore.Remove(entry.Path):
                        WriteVerbose($"Not entering '{entry.Path}': it was walked earlier in this pipeline.");
                        break;
                    case WalkEntryKind.File when entry.Path != root && NamedEarlier(entry.Path):
                        WriteVerbose($"Skipping '{entry.Path}': it was named earlier in this pipeline and processed then.");
                        break;
                    case WalkEntryKind.Directory when !Filter.ProcessesDirectory(System.IO.Path.GetFileName(entry.Path)):
                        WriteVerbose($"Walking '{entry.Path}' without processing it: -Include does not take its name.");
                        break;
                    case WalkEntryKind.File:
                    case WalkEntryKind.Directory:
                        try
                        {
                            action(entry);
                        }
                        catch (FileOperationException ex)
                        {
                            TreeErrors++;
                            BeforeError();
                            if (WriteWalkedError(Listed(ex, entry.Path), root))
                            {
                                return; // the rest of the tree would be refused the same way
                            }
                        }

                        break;
                    case WalkEntryKind.Error:
                        if (EachFileOncePerPipeline && entry.Error!.Errno is Errno.EACCES or Errno.EPERM)
                        {
                            Walked.NotEntered(entry.Path); // could not be opened or listed: a path below it named later was not reached
                        }

                        TreeErrors++;
                        UnreachableErrors += entry.Error!.Kind is FileErrorKind.NameNotUtf8 or FileErrorKind.AccessDenied ? 1 : 0;
                        BeforeError();
                        WriteError(ErrorRecords.From(entry.Error!));
                        break;
                    case WalkEntryKind.SymbolicLink:
                        WriteVerbose($"Skipping '{entry.Path}': symbolic links are never followed.");
                        break;
                    case WalkEntryKind.RunningRewrite when TreeWalker.IsAnotherUsers(entry):
                        WriteWarning(TreeWalker.RunningRewriteMessage(entry));
                        break;
                    case WalkEntryKind.RunningRewrite:
                        WriteVerbose(TreeWalker.RunningRewriteMessage(entry));
                        break;
                    case WalkEntryKind.OtherFileSystem:
                        WriteVerbose(TreeWalker.OtherFileSystemMessage(entry));
                        break;
                    default:
                        WriteVerbose($"Skipping '{entry.Path}': not a regular file or directory (never opened).");
                        break;
                }
            }
        }

        /// <summary>A walked entry's error: one whose name the walk listed but which is gone (or not what it was) by its turn says so (<see cref="FileOperationException.SinceListed"/>).</summary>
        private protected static FileOperationException Listed(FileOperationException ex, string path) =>
            FileOperationException.SinceListed(ex, path, "Run the command again for it.");

        /// <summary>
        /// Writes a walked entry's error (<see cref="FileCmdletBase.WriteFileError"/>); true when the walk of
        /// <paramref name="root"/> stops there: the refusal is its filesystem's (not btrfs, no NOCOW) and the walk
        /// does not cross into other filesystems, so every other file of the tree would be refused the same way
        /// (<paramref name="outcome"/>: what that leaves, said after).
        /// </summary>
        private protected bool WriteWalkedError(FileOperationException ex, string root, string? outcome = null)
        {
            if (!ex.SameForFileSystem)
            {
                WriteFileError(ex);
                return false;
            }

            if (CrossFileSystem.IsPresent)
            {
                // The walk goes on into other filesystems, but one that refused a file refuses its other files the same
                // way: one error for each such filesystem (a btrfs subvolume is one of its own), each other file there a
                // verbose note (before: an error per file, 39,775 of them for /proc; a hostile test).
                if (FileStatus.OfPath(ex.Path, followLinks: false) is not FileStatus st)
                {
                    WriteFileError(ex);
                }
                else if ((refusingFileSystems ??= new HashSet<(uint, uint, FileErrorKind, string)>()).Add((st.DevMajor, st.DevMinor, ex.Kind, ex.Operation)))
                {
                    WriteFileError(new FileOperationException(ex.Kind, ex.Errno, ex.Operation, ex.Path, $"{ex.Message} The other files below '{root}' {(ex.Kind == FileErrorKind.ReadOnlySnapshot ? "in the same read-only subvolume" : "on the same filesystem")} are refused the same way: each is passed over with a verbose note, not another error.", ex) { SameForFileSystem = true, NeedsRoot = ex.NeedsRoot });
                }
                else
                {
                    WriteVerbose($"Skipping '{ex.Path}': refused as the other files {(ex.Kind == FileErrorKind.ReadOnlySnapshot ? "in its read-only subvolume" : "on its filesystem")} were (the error for the first said why).");
                }

                return false;
            }

            WriteFileError(new FileOperationException(ex.Kind, ex.Errno, ex.Operation, ex.Path, $"{ex.Message} The other files below '{root}' are {(ex.Kind == FileErrorKind.ReadOnlySnapshot ? "in the same read-only subvolume" : "on the same filesystem")}: they are not walked.{(outcome is null ? string.Empty : " " + outcome)}", ex) { SameForFileSystem = true, NeedsRoot = ex.NeedsRoot });
            return true;
        }

        /// <summary>With -CrossFileSystem: the filesystems (device numbers) that refused a file of the walk for a reason of their own, and which.</summary>
        private HashSet<(uint, uint, FileErrorKind, string)>? refusingFileSystems;

        /// <summary>Ends <see cref="ForEachFileInBatches"/>'s walk once its error said why the rest of the tree is not walked.</summary>
        private sealed class WalkStopped : Exception
        {
        }

        /// <summary>The regular files below <paramref name="root"/> that the walk takes (a listing only, no file is opened), for a progress percentage.</summary>
        protected long CountFilesInTree(string root)
        {
            long total = 0;
            int passOver = partlyWalked.TryGetValue(root, out int levels) ? levels : -1; // as ForEachInTree will pass them over
            foreach (WalkEntry e in Walk(root, null))
            {
                total += e.Kind == WalkEntryKind.File && (e.Path == root || !NamedEarlier(e.Path)) && (passOver < 0 || WalkedTrees.LevelBelow(root, e.Path) > passOver) ? 1 : 0;
            }

            return total;
        }

        /// <summary>
        /// The one walk of every -Recurse cmdlet: the filter, and (each file once per pipeline) no
        /// directory entered that an earlier walk in this pipeline started at; their paths are added to
        /// <paramref name="walkedBefore"/>. With <paramref name="walkedBefore"/> set, the walk counts as taken.
        /// </summary>
        private IEnumerable<WalkEntry> Walk(string root, HashSet<string>? walkedBefore, bool again = false)
        {
            Func<string, FileStatus, int, bool>? enter = null;
            if (EachFileOncePerPipeline && !again)
            {
                WalkedTrees trees = Walked;
                enter = (path, status, _) =>
                {
                    if (trees.StartedAt(status) is null)
                    {
                        return true;
                    }

                    walkedBefore?.Add(path);
                    return false;
                };
                if (walkedBefore is not null)
                {
                    trees.Add(root);
                }
            }

            return TreeWalker.Walk(root, CrossFileSystem.IsPresent, Filter, enter);
        }

        /// <summary>
        /// Runs read-only work on every regular file below <paramref name="root"/>: files are handed to
        /// <paramref name="measure"/> a batch at a time (which runs them on every core, see
        /// <see cref="FileBatch"/>), each as its walked location (its directory's descriptor, duplicated
        /// for the batch, and its name: never its path again); while one batch is measured the previous
        /// one is written out, in walk order, so the kernel's work overlaps the pipeline's. A failed
        /// file is an error record; then <paramref name="done"/> is called for every file, with a null
        /// result for a failed one.
        /// </summary>
        private protected void ForEachFileInBatches<T>(string root, Func<IReadOnlyList<FileLocation>, FileOutcome<T>[]> measure, Action<string, T?> done)
            where T : class
        {
            const int Batch = 256;
            var batch = new FileBatchLocations(Batch);
            (Task<FileOutcome<T>[]> Work, FileBatchLocations Files)? inflight = null;
            void Emit((Task<FileOutcome<T>[]> Work, FileBatchLocations Files)? measured)
            {
                if (measured is not { } m)
                {
                    return;
                }

                try
                {
                    foreach (FileOutcome<T> o in m.Work.GetAwaiter().GetResult())
                    {
                        StopToken.ThrowIfCancellationRequested();
                        if (o.Error is not null && WriteWalkedError(Listed(o.Error, o.Path), root))
                        {
                            throw new WalkStopped();
                        }

                        done(o.Path, o.Result);
                    }
                }
                finally
                {
                    m.Files.Dispose();
                }
            }

            void Submit(FileBatchLocations files)
            {
                // The new batch is in flight (and awaited by the finally below) before the previous one is written out.
                var previous = inflight;
                inflight = (Task.Run(() => measure(files.Locations)), files);
                Emit(previous);
            }

            try
            {
                ForEachInTree(root, entry =>
                {
                    if (entry.Kind == WalkEntryKind.File && entry.Location is { } location)
                    {
                        batch.Add(location);
                        if (batch.Count == Batch)
                        {
                            FileBatchLocations full = batch;
                            batch = new FileBatchLocations(Batch);
                            Submit(full);
                        }
                    }
                });
                FileBatchLocations last = batch;
                batch = new FileBatchLocations(0);
                Submit(last);
                var final = inflight;
                inflight = null;
                Emit(final);
            }
            catch (WalkStopped)
            {
                // Its error said why the rest of the tree is not walked.
            }
            finally
            {
                if (inflight is { } left)
                {
                    left.Work.Wait(); // stopped or failed: let the readers finish before the command ends
                    left.Files.Dispose();
                }

                batch.Dispose();
            }
        }

        /// <summary>Wildcard patterns as a test on names: PowerShell's matching (case-insensitive, as Get-ChildItem -Include); null when there are none.</summary>
        private static Func<string, bool>? Patterns(string[] patterns)
        {
            if (patterns.Length == 0)
            {
                return null;
            }

            var compiled = new WildcardPattern[patterns.Length];
            for (int i = 0; i < patterns.Length; i++)
            {
                compiled[i] = WildcardPattern.Get(patterns[i], WildcardOptions.IgnoreCase | WildcardOptions.CultureInvariant);
            }

            return name =>
            {
                foreach (WildcardPattern p in compiled)
                {
                    if (p.IsMatch(name))
                    {
                        return true;
                    }
                }

                return false;
            };
        }
    }
}

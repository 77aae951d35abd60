namespace Btrfs.Commands
{
    using System;
    using System.Collections.Generic;
    using System.Management.Automation;
    using System.Threading;
    using Btrfs.Core;
    using Btrfs.Kernel;

    /// <summary>
    /// The shared plumbing of every cmdlet that works on files: -Path (wildcards) and -LiteralPath
    /// (alias PSPath, bound from pipeline objects), resolution to file system paths, and turning
    /// per-file failures into non-terminating errors so the next file is processed, Ctrl+C
    /// (StopProcessing) as a cancellation token Core checks between steps, and the walk of a tree
    /// for -Recurse. Derived cmdlets implement <see cref="ProcessFile"/>.
    /// </summary>
    public abstract class FileCmdletBase : PSCmdlet
    {
        /// <summary>Writes a non-terminating error; one that stops the command closes its progress bars first (<see cref="Preferences.WriteError"/>).</summary>
        /// <param name="errorRecord">The error.</param>
        public new void WriteError(ErrorRecord errorRecord) => Preferences.WriteError(this, errorRecord);

        /// <summary>Writes a warning; one that stops the command closes its progress bars first (<see cref="Preferences.WriteWarning"/>).</summary>
        /// <param name="text">The warning.</param>
        public new void WriteWarning(string text) => Preferences.WriteWarning(this, text);

        /// <summary>Ends the command with an error, its progress bars closed first.</summary>
        /// <param name="errorRecord">The error.</param>
        public new void ThrowTerminatingError(ErrorRecord errorRecord)
        {
            ProgressBar.CompleteAll(this);
            base.ThrowTerminatingError(errorRecord);
        }

        private readonly CancellationTokenSource stopping = new();
        private object? currentInput; // the input being processed (ProcessOne, GuardedFor), for ErrorsTargetTheInput
        private (string Path, FileErrorKind Kind)? lastRefusal; // the last error that is its filesystem's, for piped pieces of one file
        private object? lastInput; // the input before this one (a path string for the pieces of one file)
        private readonly HashSet<string> named = new(StringComparer.Ordinal);

        /// <summary>Name of the wildcard parameter set.</summary>
        protected const string PathSet = "Path";

        /// <summary>Name of the literal parameter set.</summary>
        protected const string LiteralPathSet = "LiteralPath";

        /// <summary>Paths to process; wildcards given on the command line are expanded. Binds strings and the Path property of piped objects, used literally.</summary>
        [Parameter(ParameterSetName = PathSet, Mandatory = true, Position = 0, ValueFromPipeline = true, ValueFromPipelineByPropertyName = true)]
        [SupportsWildcards]
        [ValidateNotNullOrEmpty]
        [PipedPath]
        public string[] Path { get; set; } = Array.Empty<string>();

        /// <summary>Paths to process, used exactly as given (no wildcard expansion).</summary>
        [Parameter(ParameterSetName = LiteralPathSet, Mandatory = true, ValueFromPipelineByPropertyName = true)]
        [Alias("PSPath", "LP")]
        [ValidateNotNullOrEmpty]
        [PipedPath]
        public string[] LiteralPath { get; set; } = Array.Empty<string>();

        /// <summary>
        /// True (the default): a file named again in the same pipeline (by another piped object, e.g.
        /// every extent of one file from Get-BtrfsExtent, or twice in -Path), or reached again by another
        /// -Recurse walk of the pipeline, is processed only the first time. False where each input asks its
        /// own question and gets its own answer (Get-BtrfsExtentOwner: one range per extent; the Test
        /// cmdlets: one answer per input, as Test-Path).
        /// </summary>
        protected virtual bool EachFileOncePerPipeline => true;

        /// <summary>
        /// -WhatIf is in effect: given to this command, or to the script or function that called it
        /// ($WhatIfPreference), as ShouldProcess itself sees it.
        /// </summary>
        protected bool WhatIfInEffect => Preferences.WhatIfInEffect(this);

        /// <summary>
        /// The user switched confirmation off: -Confirm:$false here, or $ConfirmPreference 'None' from a
        /// caller that was given -Confirm:$false. Questions asked with ShouldContinue are skipped then.
        /// </summary>
        protected bool ConfirmSwitchedOff => Preferences.ConfirmSwitchedOff(this);

        /// <summary>True when <paramref name="path"/> was named directly (or piped) earlier in this pipeline and processed once already.</summary>
        private protected bool NamedEarlier(string path) => EachFileOncePerPipeline && named.Contains(path);

        /// <summary>Cancelled when the user presses Ctrl+C (StopProcessing); Core checks it between steps.</summary>
        protected CancellationToken StopToken => stopping.Token;

        /// <summary>
        /// True once an input was refused for a call the kernel allows root only, which every other input needs too
        /// (<see cref="EveryInputNeedsRoot"/>): its error was written and nothing more is processed.
        /// </summary>
        private protected bool RefusedEveryInput { get; private set; }

        /// <summary>Resolves the bound paths and calls <see cref="ProcessFile"/> for each file.</summary>
        protected override void ProcessRecord()
        {
            if (RefusedEveryInput)
            {
                return; // said once already, for the first input: the ones piped after it are not processed
            }

            foreach (string file in ResolvePaths())
            {
                if (stopping.IsCancellationRequested)
                {
                    return;
                }

                if (Takes(file) && !ProcessOne(file))
                {
                    return;
                }
            }
        }

        /// <summary>
        /// <see cref="ProcessFile"/> for one path, its failure written as this input's error; false when
        /// Ctrl+C stopped it (Core stopped between steps and cleaned up; the engine ends the pipeline).
        /// </summary>
        private protected bool ProcessOne(string file) => GuardedFor(file, () => ProcessFile(file));

        /// <summary><see cref="Guarded"/> for the input <paramref name="input"/> (a path given or piped, an id, a piped object), which <see cref="ErrorsTargetTheInput"/> names.</summary>
        private protected bool GuardedFor(object input, Action step)
        {
            if (!Equals(input, lastInput))
            {
                lastRefusal = null; // another input: its refusal is said again (only pieces of one file in a row are one)
            }

            lastInput = input;
            currentInput = input;
            try
            {
                return Guarded(step);
            }
            finally
            {
                currentInput = null;
            }
        }

        /// <summary>
        /// Whether an input's errors have the input's path as their target even where the message names another
        /// path (a missing parent, a nested subvolume, where a link led): the subvolume cmdlets, whose one input is
        /// one subvolume. The cmdlets that walk a tree name each file they failed on.
        /// </summary>
        private protected virtual bool ErrorsTargetTheInput => false;

        /// <summary>
        /// Subvolumes given by -Id on the filesystem of -FileSystemPath (resolved once; a bad one is its own
        /// error): <paramref name="byId"/> for each, each failure its own error. False when Ctrl+C stopped it.
        /// </summary>
        private protected bool EachSubvolumeId(ulong[] ids, string fileSystemPath, Action<string, ulong> byId)
        {
            if (PathBinding.UnresolvedFileSystemPath(this, fileSystemPath) is not string on)
            {
                return true;
            }

            // A -FileSystemPath that is missing or not on btrfs is its own error, once, with it as the target (each
            // id's error targets the id).
            bool usable = false;
            if (!Guarded(() =>
            {
                using OpenFile anchor = OpenFile.Open(on, OpenOptions.AllowDirectory);
                BtrfsOnly.Require(anchor, "find subvolumes by id on the filesystem of", because: "only btrfs has subvolumes");
                usable = true;
            }))
            {
                return false;
            }

            if (!usable)
            {
                return true;
            }

            foreach (ulong id in ids)
            {
                if (!GuardedFor(id, () => byId(on, id)))
                {
                    return false;
                }
            }

            return true;
        }

        /// <summary>
        /// Piped subvolume objects: each by its Path (a relative one from the current location) through
        /// <paramref name="byPath"/>, or, where no mount reaches it, by its Id on the filesystem of its
        /// FileSystemPath through <paramref name="byId"/>; one with neither is a SubvolumeNotReachable error
        /// that says what to <paramref name="verb"/> it. False when Ctrl+C stopped it.
        /// </summary>
        private protected bool EachSubvolume(BtrfsSubvolumeInfo[] objects, string verb, Func<string, BtrfsSubvolumeInfo, bool> byPath, Action<string, BtrfsSubvolumeInfo> byId)
        {
            foreach (BtrfsSubvolumeInfo s in objects)
            {
                bool goOn = s.Path is string path ? byPath(PathBinding.FromCurrentLocation(this, path), s)
                    : s.FileSystemPath is string on ? GuardedFor(s, () => byId(PathBinding.FromCurrentLocation(this, on), s))
                    : Guarded(() => throw new FileOperationException(
                        FileErrorKind.SubvolumeNotReachable,
                        0,
                        verb,
                        s.TopLevelPath ?? s.Name,
                        $"Cannot {verb} subvolume {s.Id} ('{s}'): the object names neither a path nor the filesystem it is on. Give -Id {s.Id} -FileSystemPath with a path on its filesystem. Nothing was changed."));
                if (!goOn)
                {
                    return false;
                }
            }

            return true;
        }

        /// <summary>
        /// One step for one input (a file, a subvolume by id): its failure written as this input's error, and
        /// the next input goes on; false when Ctrl+C stopped it.
        /// </summary>
        private protected bool Guarded(Action step)
        {
            try
            {
                try
                {
                    step();
                }
                catch (FileOperationException ex)
                {
                    BeforeError();
                    WriteFileError(ex); // may end every input (EveryInputRefused, from inside this handler)
                }
            }
            catch (OperationCanceledException) when (stopping.IsCancellationRequested)
            {
                return false;
            }
            catch (EveryInputRefused)
            {
                return false;
            }

            return true;
        }

        /// <inheritdoc/>
        protected override void StopProcessing() => stopping.Cancel();

        /// <summary>
        /// Whether every input reaches a call the kernel allows root only (the btrfs metadata readers:
        /// Measure-BtrfsUsage, Get-BtrfsExtentOwner, Get-BtrfsExtent -Exact): then the first such refusal
        /// (<see cref="FileOperationException.NeedsRoot"/>) stops the command, rather than one error per
        /// file of a tree, or per extent piped.
        /// </summary>
        private protected virtual bool EveryInputNeedsRoot => false;

        /// <summary>
        /// One input's error: written, and the next input goes on; or, when it needs root and every other
        /// input would need it too (<see cref="EveryInputNeedsRoot"/>), written once and nothing more is processed
        /// (<see cref="RefusedEveryInput"/>). Not a terminating error, so -ErrorAction, -ErrorVariable and 2&gt;
        /// take it as any other (a hostile review: a terminating one could be neither silenced nor captured).
        /// </summary>
        private protected void WriteFileError(FileOperationException ex)
        {
            if (ex.NeedsRoot && EveryInputNeedsRoot)
            {
                RefusedEveryInput = true;
                WriteError(ErrorRecords.From(new FileOperationException(
                    ex.Kind,
                    ex.Errno,
                    ex.Operation,
                    ex.Path,
                    $"{ex.Message} Stopped here: every other file needs it too.",
                    ex) { NeedsRoot = true }));
                throw new EveryInputRefused();
            }

            // Pieces of one file piped one after another (its extents, into Get-BtrfsExtentOwner): a refusal that is the
            // file's filesystem's (not btrfs, a read-only snapshot) is said once for the file, not once per piece (before:
            // 1,016 identical errors for the extents of one xfs file; found by a hostile review).
            (string, FileErrorKind)? refusal = ex.SameForFileSystem ? (ex.Path, ex.Kind) : null;
            if (refusal is not null && refusal == lastRefusal)
            {
                return;
            }

            lastRefusal = refusal;
            WriteError(ErrorsTargetTheInput && currentInput is { } input ? ErrorRecords.From(ex, input) : ErrorRecords.From(ex));
        }

        /// <summary>Called before an input's error is written: a cmdlet with results still to write writes them first, so output keeps the order of the inputs.</summary>
        private protected virtual void BeforeError()
        {
        }

        /// <summary>Whether a resolved path is processed at all (the -Include and -Exclude of a -Recurse cmdlet); true here.</summary>
        private protected virtual bool Takes(string path) => true;

        /// <summary>Does the cmdlet's work on one resolved file system path.</summary>
        protected abstract void ProcessFile(string path);

        /// <summary>A directory given without -Recurse: a PathIsDirectory error that says -Recurse <paramref name="what"/>.</summary>
        protected static void ThrowIfDirectoryWithoutRecurse(string path, bool recurse, string verb, string what)
        {
            if (!recurse && FileStatus.OfPath(path, followLinks: true) is { IsDirectory: true })
            {
                if (FileStatus.OfPath(path, followLinks: false) is { IsSymbolicLink: true })
                {
                    // A walk never follows a link, its start included: "Add -Recurse" led only to that refusal (a hostile test).
                    throw new FileOperationException(
                        FileErrorKind.IsSymbolicLink,
                        Errno.ELOOP,
                        "stat",
                        path,
                        $"Cannot {verb} '{path}': it is a symbolic link to a directory, and symbolic links are never followed (with -Recurse neither). Give the directory's own path with -Recurse to {what}.");
                }

                throw new FileOperationException(
                    FileErrorKind.IsDirectory,
                    0,
                    "stat",
                    path,
                    $"Cannot {verb} '{path}': it is a directory. Add -Recurse to {what}.");
            }
        }

        /// <summary>The path parameter's value being processed, as bound (before resolution): <see cref="PipedPathAttribute.UuidOf"/> knows an object's by it.</summary>
        private protected string? CurrentInputText { get; private set; }

        private IEnumerable<string> ResolvePaths()
        {
            // A value that came from the pipeline (a piped string, or the Path property of a piped object
            // without PSPath) names a file: it is used literally, never expanded as a pattern, which could
            // reach another file ("x[1].img" matches "x1.img"). Patterns come from the command line only.
            bool literal = ParameterSetName == LiteralPathSet || MyInvocation.ExpectingInput;
            foreach (string input in ParameterSetName == LiteralPathSet ? LiteralPath : Path)
            {
                CurrentInputText = input;
                foreach (string found in Resolve(input, literal || PipedPathAttribute.FromObject(input)))
                {
                    string resolved = found.Length > 1 ? found.TrimEnd('/') : found; // 'sub/' (tab completion) is 'sub'

                    if (!EachFileOncePerPipeline || named.Add(resolved))
                    {
                        yield return resolved;
                    }
                    else if (EachFileOncePerPipeline)
                    {
                        WriteVerbose($"'{resolved}' was named again in this pipeline: each file is processed once.");
                    }
                }
            }
        }

        /// <summary>Whether a path as given ends as only a directory's can: '/', '/.' or '/..' (trailing slashes and all).</summary>
        private static bool NamesADirectory(string input)
        {
            string t = input.TrimEnd('/');
            return (t.Length < input.Length && t.Length > 0) || t.EndsWith("/.", StringComparison.Ordinal) || t.EndsWith("/..", StringComparison.Ordinal) || t is "." or "..";
        }

        /// <summary>
        /// The file system paths <paramref name="input"/> names: used as given when <paramref name="literal"/>, else a
        /// pattern expanded (escapes undone where it has none), each bad input one error record (a pattern matching
        /// nothing says <paramref name="noMatchAdvice"/>, or to use -LiteralPath). Every path parameter resolves here.
        /// </summary>
        private protected List<string> Resolve(string input, bool literal, string? noMatchAdvice = null)
        {
            var result = new List<string>();
            if (PipedPathAttribute.NamesNoFile(input) is string type)
            {
                WriteError(ErrorRecords.ObjectNamesNoFile(input, type));
                return result;
            }

            if (input.Contains('\0', StringComparison.Ordinal))
            {
                // The kernel reads a path up to its first NUL: 'k\0zzz' would reach 'k' (a hostile test: deduplicated).
                WriteError(ErrorRecords.NulInPath(input));
                return result;
            }

            ProviderInfo provider;
            try
            {
                if (literal || !WildcardPattern.ContainsWildcardCharacters(input))
                {
                    // Existence is Core's to judge, so a missing file, a dangling link and a FIFO each get their own error.
                    // A -Path without wildcards may still escape them ('vm`[1`].img'): it names the file with the escapes undone.
                    string named = literal ? input : WildcardPattern.Unescape(input);
                    string path = SessionState.Path.GetUnresolvedProviderPathFromPSPath(named, out provider, out _);
                    if (provider.ImplementingType == typeof(Microsoft.PowerShell.Commands.FileSystemProvider) && !PathBinding.Unambiguous(this, named, path))
                    {
                        return result;
                    }

                    result.Add(path);
                }
                else if (PathBinding.PatternAmbiguity(this, input) is { } ambiguous)
                {
                    WriteError(ambiguous);
                    return result;
                }
                else
                {
                    result.AddRange(SessionState.Path.GetResolvedProviderPathFromPSPath(input, out provider));
                    if (result.Count == 0)
                    {
                        WriteError(noMatchAdvice is null ? ErrorRecords.NoMatch(input) : ErrorRecords.NoMatch(input, noMatchAdvice));
                    }
                }
            }
            catch (ItemNotFoundException)
            {
                WriteError(noMatchAdvice is null ? ErrorRecords.NoMatch(input) : ErrorRecords.NoMatch(input, noMatchAdvice));
                return result;
            }
            catch (WildcardPatternException ex)
            {
                // Get-Item stops the pipeline here; this module's promise is an error for the input and the next one goes on (a hostile test).
                WriteError(ErrorRecords.InvalidPattern(input, ex));
                return result;
            }
            catch (Exception ex) when (ex is ProviderNotFoundException or DriveNotFoundException or NotSupportedException or PSArgumentException or ArgumentException or System.IO.IOException)
            {
                WriteError(ErrorRecords.FromResolution(input, ex));
                return result;
            }

            if (provider.ImplementingType != typeof(Microsoft.PowerShell.Commands.FileSystemProvider))
            {
                WriteError(ErrorRecords.NotFileSystemPath(input, provider.Name));
                result.Clear();
            }
            else if (NamesADirectory(input))
            {
                // 'x.txt/' or 'x.txt/.' names a directory: the kernel refuses it (ENOTDIR), as ls does; PowerShell's
                // resolution drops the ending, and the file was acted on (a hostile test). A pattern ('x*/') matches
                // directories only, as the shell's does.
                bool pattern = !literal && WildcardPattern.ContainsWildcardCharacters(input);
                result.RemoveAll(found =>
                {
                    string bare = found;
                    while (bare.Length > 1 && (bare.EndsWith('/') || bare.EndsWith("/.", StringComparison.Ordinal)))
                    {
                        bare = bare.EndsWith('/') ? bare[..^1] : bare[..^2];
                    }

                    if (FileStatus.OfPath(bare, followLinks: true) is not { IsDirectory: false })
                    {
                        return false;
                    }

                    if (!pattern)
                    {
                        WriteError(ErrorRecords.NotADirectory(input, bare));
                    }

                    return true;
                });
            }

            return result;
        }

        /// <summary>Ends the processing of every input once <see cref="WriteFileError"/> said that each needs root.</summary>
        private sealed class EveryInputRefused : Exception
        {
        }
    }
}

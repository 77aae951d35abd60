namespace Btrfs.Commands
{
    using System;
    using System.Collections.Generic;
    using System.Management.Automation;
    using System.Threading;
    using System.Threading.Tasks;
    using Btrfs.Core;

    /// <summary>
    /// The shared plumbing of every cmdlet that works on files: -Path (wildcards) and -LiteralPath
    /// (alias PSPath, bound from pipeline objects), resolution to file system paths, and turning
    /// per-file failures into non-terminating errors so the next file is processed, Ctrl+C
    /// (StopProcessing) as a cancellation token Core checks between steps, and the walk of a tree
    /// for -Recurse. Derived cmdlets implement <see cref="ProcessFile"/>.
    /// </summary>
    public abstract class FileCmdletBase : PSCmdlet
    {
        private readonly CancellationTokenSource stopping = new();
        private readonly HashSet<string> named = new(StringComparer.Ordinal);

        /// <summary>Name of the wildcard parameter set.</summary>
        protected const string PathSet = "Path";

        /// <summary>Name of the literal parameter set.</summary>
        protected const string LiteralPathSet = "LiteralPath";

        /// <summary>Paths to process; wildcards are expanded. Binds strings and the Path property of piped objects.</summary>
        [Parameter(ParameterSetName = PathSet, Mandatory = true, Position = 0, ValueFromPipeline = true, ValueFromPipelineByPropertyName = true)]
        [SupportsWildcards]
        [ValidateNotNullOrEmpty]
        public string[] Path { get; set; } = Array.Empty<string>();

        /// <summary>Paths to process, used exactly as given (no wildcard expansion).</summary>
        [Parameter(ParameterSetName = LiteralPathSet, Mandatory = true, ValueFromPipelineByPropertyName = true)]
        [Alias("PSPath", "LP")]
        [ValidateNotNullOrEmpty]
        public string[] LiteralPath { get; set; } = Array.Empty<string>();

        /// <summary>
        /// True (the default): a file named again in the same pipeline (by another piped object, e.g.
        /// every extent of one file from Get-BtrfsExtent, or twice in -Path) is processed only the first
        /// time. False where each piped object asks its own question (Get-BtrfsExtentOwner: one range per extent).
        /// </summary>
        protected virtual bool EachFileOncePerPipeline => true;

        /// <summary>Cancelled when the user presses Ctrl+C (StopProcessing); Core checks it between steps.</summary>
        protected CancellationToken StopToken => stopping.Token;

        /// <summary>Resolves the bound paths and calls <see cref="ProcessFile"/> for each file.</summary>
        protected override void ProcessRecord()
        {
            foreach (string file in ResolvePaths())
            {
                if (stopping.IsCancellationRequested)
                {
                    return;
                }

                try
                {
                    ProcessFile(file);
                }
                catch (FileOperationException ex)
                {
                    WriteError(ErrorRecords.From(ex));
                }
                catch (OperationCanceledException) when (stopping.IsCancellationRequested)
                {
                    return; // Core stopped between steps and cleaned up; the engine ends the pipeline.
                }
            }
        }

        /// <inheritdoc/>
        protected override void StopProcessing() => stopping.Cancel();

        /// <summary>Does the cmdlet's work on one resolved file system path.</summary>
        protected abstract void ProcessFile(string path);

        /// <summary>A directory given without -Recurse: a PathIsDirectory error that says -Recurse <paramref name="what"/>.</summary>
        protected static void ThrowIfDirectoryWithoutRecurse(string path, bool recurse, string verb, string what)
        {
            if (!recurse && FileStatus.OfPath(path, followLinks: true) is { IsDirectory: true })
            {
                throw new FileOperationException(
                    FileErrorKind.IsDirectory,
                    Interop.Libc.EISDIR,
                    "stat",
                    path,
                    $"Cannot {verb} '{path}': it is a directory. Add -Recurse to {what}.");
            }
        }

        /// <summary>
        /// Runs <paramref name="action"/> on <paramref name="root"/> and every regular file and
        /// directory below it (a directory before its contents), through the one
        /// <see cref="TreeWalker"/>. A failure on one entry, and a directory that cannot be read, is
        /// an error record and the walk goes on; symbolic links, FIFOs, devices and other filesystems
        /// are skipped with a verbose message. Stops between entries on Ctrl+C.
        /// </summary>
        protected void ForEachInTree(string root, bool crossFileSystems, Action<WalkEntry> action)
        {
            foreach (WalkEntry entry in TreeWalker.Walk(root, crossFileSystems))
            {
                StopToken.ThrowIfCancellationRequested();
                switch (entry.Kind)
                {
                    case WalkEntryKind.File:
                    case WalkEntryKind.Directory:
                        try
                        {
                            action(entry);
                        }
                        catch (FileOperationException ex)
                        {
                            WriteError(ErrorRecords.From(ex));
                        }

                        break;
                    case WalkEntryKind.Error:
                        WriteError(ErrorRecords.From(entry.Error!));
                        break;
                    case WalkEntryKind.SymbolicLink:
                        WriteVerbose($"Skipping '{entry.Path}': symbolic links are never followed.");
                        break;
                    case WalkEntryKind.OtherFileSystem:
                        WriteVerbose($"Not descending into '{entry.Path}': it is another filesystem or btrfs subvolume (use -CrossFileSystem to include it).");
                        break;
                    default:
                        WriteVerbose($"Skipping '{entry.Path}': not a regular file or directory (never opened).");
                        break;
                }
            }
        }

        /// <summary>The regular files below <paramref name="root"/> (a listing only, no file is opened), for a progress percentage.</summary>
        protected static long CountFilesInTree(string root, bool crossFileSystems)
        {
            long total = 0;
            foreach (WalkEntry e in TreeWalker.Walk(root, crossFileSystems))
            {
                total += e.Kind == WalkEntryKind.File ? 1 : 0;
            }

            return total;
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
        private protected void ForEachFileInBatches<T>(string root, bool crossFileSystems, Func<IReadOnlyList<FileLocation>, FileOutcome<T>[]> measure, Action<string, T?> done)
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
                        if (o.Error is not null)
                        {
                            WriteError(ErrorRecords.From(o.Error));
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
                ForEachInTree(root, crossFileSystems, entry =>
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

        private IEnumerable<string> ResolvePaths()
        {
            bool literal = ParameterSetName == LiteralPathSet;
            HashSet<string> seen = EachFileOncePerPipeline ? named : new HashSet<string>(StringComparer.Ordinal);
            foreach (string input in literal ? LiteralPath : Path)
            {
                foreach (string resolved in Resolve(input, literal))
                {
                    if (seen.Add(resolved))
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

        private List<string> Resolve(string input, bool literal)
        {
            var result = new List<string>();
            ProviderInfo provider;
            try
            {
                if (literal || !WildcardPattern.ContainsWildcardCharacters(input))
                {
                    // Existence is Core's to judge, so a missing file, a dangling link and a FIFO each get their own error.
                    result.Add(SessionState.Path.GetUnresolvedProviderPathFromPSPath(input, out provider, out _));
                }
                else
                {
                    result.AddRange(SessionState.Path.GetResolvedProviderPathFromPSPath(input, out provider));
                    if (result.Count == 0)
                    {
                        WriteError(ErrorRecords.NoMatch(input));
                    }
                }
            }
            catch (ItemNotFoundException)
            {
                WriteError(ErrorRecords.NoMatch(input));
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

            return result;
        }
    }
}

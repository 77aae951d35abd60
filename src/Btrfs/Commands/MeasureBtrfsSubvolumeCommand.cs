namespace Btrfs.Commands
{
    using System;
    using System.Management.Automation;
    using Btrfs.Core;
    using Btrfs.Kernel;

    /// <summary>
    /// Measure-BtrfsSubvolume: what each subvolume (or a set, -Together) references and holds alone,
    /// exactly as qgroups count it (data and tree blocks, whole extents), without qgroups: read from the
    /// committed trees on the devices after a commit. Root only.
    /// </summary>
    [Cmdlet(VerbsDiagnostic.Measure, "BtrfsSubvolume", DefaultParameterSetName = LiteralPathSet, HelpUri = HelpLinks.Pages + "Measure-BtrfsSubvolume.md")]
    [OutputType(typeof(BtrfsSubvolumeUsage))]
    public sealed class MeasureBtrfsSubvolumeCommand : FileCmdletBase
    {
        private const int ProgressId = 0x4256;
        private const string IdSet = "Id";
        private const string InputObjectSet = "InputObject";
        private SubvolumeUsageMeter? meter;

        /// <summary>Subvolumes by id (as Get-BtrfsSubvolume and btrfs subvolume list show them), on the filesystem of -FileSystemPath: also those no mount reaches.</summary>
        [Parameter(ParameterSetName = IdSet, Mandatory = true)]
        [ArgumentCompleter(typeof(SubvolumeIdCompleter))]
        public ulong[] Id { get; set; } = System.Array.Empty<ulong>();

        /// <summary>With -Id: any path on the filesystem.</summary>
        [Parameter(ParameterSetName = IdSet, Mandatory = true)]
        [ValidateNotNullOrEmpty]
        public string FileSystemPath { get; set; } = string.Empty;

        /// <summary>
        /// Subvolume objects from Get-BtrfsSubvolume (piped): each by its Path, or, where no mount reaches it
        /// (Path null), by its Id on the filesystem of its FileSystemPath.
        /// </summary>
        [Parameter(ParameterSetName = InputObjectSet, Mandatory = true, ValueFromPipeline = true)]
        public BtrfsSubvolumeInfo[] InputObject { get; set; } = System.Array.Empty<BtrfsSubvolumeInfo>();

        /// <summary>
        /// Only if the path leads to the subvolume with this UUID (bound from a piped object's Uuid: a
        /// deserialized one, or one read back from JSON or CSV); otherwise SubvolumeReplaced. A value that is not
        /// a UUID (empty too) is refused (InvalidArgument), never taken as none.
        /// </summary>
        [Parameter(ParameterSetName = LiteralPathSet, ValueFromPipelineByPropertyName = true)]
        [Parameter(ParameterSetName = PathSet, ValueFromPipelineByPropertyName = true)]
        public SubvolumeUuid? Uuid { get; set; }

        /// <summary>One answer for all the subvolumes given (per filesystem): what they reference, and what deleting all of them would free.</summary>
        [Parameter]
        public SwitchParameter Together { get; set; }

        /// <inheritdoc/>
        protected override void BeginProcessing() => meter = new SubvolumeUsageMeter();

        /// <inheritdoc/>
        protected override void ProcessRecord()
        {
            if (ParameterSetName == IdSet)
            {
                EachSubvolumeId(Id, FileSystemPath, (on, id) => meter!.AddById(on, id));
            }
            else if (ParameterSetName == InputObjectSet)
            {
                EachSubvolume(InputObject, "measure", (path, s) => GuardedFor(path, () => meter!.Add(path, NamedSubvolume.Of(s))), (on, s) => meter!.AddById(on, s.Id, NamedSubvolume.Of(s)));
            }
            else
            {
                base.ProcessRecord();
            }
        }

        /// <inheritdoc/>
        private protected override bool ErrorsTargetTheInput => true;

        /// <inheritdoc/>
        protected override void ProcessFile(string path) => meter!.Add(path, SubvolumeUuid.Named(this, Uuid, "measure", path, "Nothing was measured", PipedPathAttribute.UuidOf(CurrentInputText)));

        /// <inheritdoc/>
        protected override void EndProcessing()
        {
            using SubvolumeUsageMeter taken = meter!;
            var bar = new ProgressBar(this, ProgressId, "Measure-BtrfsSubvolume", notBefore: TimeSpan.FromSeconds(1));
            try
            {
                for (int i = 0; i < taken.FileSystems; i++)
                {
                    string on = taken.PathOn(i);
                    try
                    {
                        var measured = taken.Measure(i, Together.IsPresent, StopToken, out var gone, (read, estimate) =>
                            bar.Show($"Reading the trees of the filesystem of {on}: {read} block(s)", estimate > 0 ? Math.Min(99, ProgressBar.Percent(read, estimate)) : -1));
                        foreach ((FileOperationException ex, object input) in gone)
                        {
                            WriteError(ErrorRecords.From(ex, input));
                        }

                        foreach (BtrfsSubvolumeUsage usage in measured)
                        {
                            WriteObject(usage);
                        }
                    }
                    catch (FileOperationException ex)
                    {
                        // The inputs, not the device it could not read: each of them (before: only the first, and the rest
                        // of that filesystem's inputs had neither a result nor an error; a hostile review). A set is one.
                        foreach (object input in Together.IsPresent ? new[] { taken.InputOn(i) } : taken.InputsOn(i))
                        {
                            WriteError(ErrorRecords.From(ex, input));
                        }
                    }
                }
            }
            catch (OperationCanceledException) when (StopToken.IsCancellationRequested)
            {
                // Ctrl+C: nothing was changed; the engine ends the pipeline.
            }
            finally
            {
                bar.Complete("Done");
            }
        }
    }
}

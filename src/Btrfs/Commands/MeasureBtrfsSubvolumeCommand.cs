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
        private SubvolumeUsageMeter? meter;

        /// <summary>One answer for all the subvolumes given (per filesystem): what they reference, and what deleting all of them would free.</summary>
        [Parameter]
        public SwitchParameter Together { get; set; }

        /// <inheritdoc/>
        protected override void BeginProcessing() => meter = new SubvolumeUsageMeter();

        /// <inheritdoc/>
        protected override void ProcessFile(string path) => meter!.Add(path);

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
                        foreach (FileOperationException ex in gone)
                        {
                            WriteError(ErrorRecords.From(ex));
                        }

                        foreach (BtrfsSubvolumeUsage usage in measured)
                        {
                            WriteObject(usage);
                        }
                    }
                    catch (FileOperationException ex)
                    {
                        WriteError(ErrorRecords.From(ex));
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

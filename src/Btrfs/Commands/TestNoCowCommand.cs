namespace Btrfs.Commands
{
    using System.Management.Automation;
    using Btrfs.Core;
    using Btrfs.Kernel;

    /// <summary>Test-NoCow: is NOCOW really in effect? One [bool] per item, or with -Detailed the facts and the reason.</summary>
    [Cmdlet(VerbsDiagnostic.Test, "NoCow", DefaultParameterSetName = LiteralPathSet, HelpUri = HelpLinks.Pages + "Test-NoCow.md")]
    [OutputType(typeof(bool), typeof(NoCowStatus))]
    public sealed class TestNoCowCommand : RecursiveFileCmdletBase
    {
        /// <inheritdoc/>
        private protected override bool ProcessesDirectories => true;

        /// <summary>One answer per input, as Test-Path gives; with -Recurse each file of the walked trees once.</summary>
        protected override bool EachFileOncePerPipeline => Recursing;

        /// <summary>Emit a NoCowStatus object per item instead of a boolean.</summary>
        [Parameter]
        public SwitchParameter Detailed { get; set; }

        /// <summary>The reason is shown (-Detailed or verbose messages): only then is a COW file's NODATASUM flag read from the tree (a search per file).</summary>
        private bool ReasonShown => reasonShown ??= Detailed.IsPresent || Preferences.VerboseWanted(this);

        private bool? reasonShown;

        /// <inheritdoc/>
        protected override void ProcessFile(string path)
        {
            if (!Recursing)
            {
                Write(NoCowInspector.Inspect(path, ReasonShown));
                return;
            }

            // The directory, then every directory and file below it, each opened through the walk's descriptors.
            ForEachInTree(path, entry =>
            {
                using OpenFile item = entry.Location is { } at
                    ? OpenFile.Open(at, OpenOptions.AllowDirectory | OpenOptions.NoFollow)
                    : OpenFile.Open(entry.Path, OpenOptions.AllowDirectory);
                Write(NoCowInspector.Inspect(item, ReasonShown));
            });
        }

        private void Write(NoCowStatus status)
        {
            WriteVerbose($"{status.Path}: {status.ReasonText}");
            WriteObject(Detailed.IsPresent ? status : status.NoCowInEffect);
        }
    }
}

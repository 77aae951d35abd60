#Requires -Version 7.4
<#
.SYNOPSIS
    Builds, tests, documents and packages the Btrfs module. A thin wrapper over dotnet commands.
.EXAMPLE
    ./build.ps1                 # Build: bin/Btrfs.dll, then Import-Module ./Btrfs.psd1
.EXAMPLE
    ./build.ps1 -Task Test      # the test suite (needs root for the loop-mounted filesystems)
.EXAMPLE
    ./build.ps1 -Task Package   # out/Btrfs/<version>/, ready for Publish-PSResource
#>
[CmdletBinding()]
param(
    [ValidateSet('Build', 'Test', 'Help', 'Package')]
    [string] $Task = 'Build',

    [ValidateSet('Debug', 'Release')]
    [string] $Configuration = 'Release'
)

$ErrorActionPreference = 'Stop'
Set-StrictMode -Version Latest
$root = $PSScriptRoot

function Invoke-Dotnet {
    & dotnet @args
    if ($LASTEXITCODE -ne 0) { throw "dotnet $($args -join ' ') failed with exit code $LASTEXITCODE" }
}

switch ($Task) {
    'Build' {
        Invoke-Dotnet build (Join-Path $root 'src/Btrfs/Btrfs.csproj') -c $Configuration
    }
    'Test' {
        # The README's test command.
        Invoke-Dotnet test (Join-Path $root 'Btrfs.sln') -c $Configuration
    }
    'Help' {
        # The parameters' facts come from the cmdlets in bin/Btrfs.dll; the markdown gives the words.
        Invoke-Dotnet build (Join-Path $root 'src/Btrfs/Btrfs.csproj') -c $Configuration
        Invoke-Dotnet run --project (Join-Path $root 'src/Btrfs.HelpGen') -- (Join-Path $root 'src/Help/en-US') (Join-Path $root 'en-US/Btrfs.dll-Help.xml') (Join-Path $root 'bin/Btrfs.dll')
    }
    'Package' {
        # The dotnet target lays out out/Btrfs/<version>/ (tested in CI); this only calls it.
        Invoke-Dotnet build (Join-Path $root 'src/Btrfs/Btrfs.csproj') -c Release -t:Package
    }
}

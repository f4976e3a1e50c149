from saftool.cli import main

main()

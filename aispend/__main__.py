from aispend.cli import main

main()

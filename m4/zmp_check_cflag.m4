# ZMP_CHECK_CFLAG(FLAG, [ACTION-IF-ACCEPTED], [ACTION-IF-NOT])
# Whether the C compiler accepts FLAG, with warnings turned into errors so
# that a flag the compiler merely ignores is not taken.
AC_DEFUN([ZMP_CHECK_CFLAG], [
  AS_VAR_PUSHDEF([zmp_var], [zmp_cv_cflag_$1])
  AC_CACHE_CHECK([whether $CC accepts $1], [zmp_var], [
    zmp_cflag_save=$CFLAGS
    CFLAGS="$CFLAGS -Werror $1"
    AC_COMPILE_IFELSE([AC_LANG_PROGRAM([], [])],
      [AS_VAR_SET([zmp_var], [yes])], [AS_VAR_SET([zmp_var], [no])])
    CFLAGS=$zmp_cflag_save])
  AS_VAR_IF([zmp_var], [yes], [$2], [$3])
  AS_VAR_POPDEF([zmp_var])
])
